"""Reference services with synthetic data, for demonstrations, tests and benchmarks.

Three small backends, each deterministic (the same input always gives the
same answer) and labelled SYNTHETIC in every response body and in an
``X-Synthetic-Data`` header:

* ``dwp-cis``: DWP customer information lookup by National Insurance number;
* ``fsm``: free school meals eligibility check;
* ``dvla``: vehicle keeper lookup by registration mark.

Run one with ``python -m gcx.reference serve dwp-cis --port 8701`` (or
``gcx service reference dwp-cis --port 8701``).

The demo's scripting on a local network lives here too, beside the services
it shows: ``network`` (publishing these services on a :mod:`gcx.localnet`
network), ``demo_path`` (taking organisations through the Code of
Connection), ``demo_steps`` (the service-access steps) and ``showcase`` (the
running account of the steps).
"""

from gcx.reference._data import (
    REFERENCE_SERVICES,
    generate_nino,
    nino_is_valid,
    sample_ninos,
)
from gcx.reference.app import build_app, openapi_for

__all__ = [
    "REFERENCE_SERVICES",
    "build_app",
    "generate_nino",
    "nino_is_valid",
    "openapi_for",
    "sample_ninos",
]
