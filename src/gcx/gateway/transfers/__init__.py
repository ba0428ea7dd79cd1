"""Bulk file transfers: uploads, sealing, the transfer carrier and the peer side."""
