"""Service calls: the local API, the proxy to the provider, the provider side, the call log."""
