"""The gateway: the process each organisation runs to take part in the network."""
