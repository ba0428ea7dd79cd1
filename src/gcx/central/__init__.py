"""The central service: member registry, certificate authority, enrolment and directory."""
