"""A whole network on loopback: central and gateways as real processes.

Used by ``gcx demo`` and by the integration tests, so what the demo shows is
what the tests exercise. Every process is a real ``gcx`` process on real
sockets with real TLS; nothing is simulated.

Ports: this process binds every listening socket itself, on port 0, writes the
port the kernel gave into the configuration of the process that will serve on
it (a gateway's peer address must be known at enrolment, before the gateway
first runs) and hands the bound socket to that process when it starts it
(gcx.listeners). No port is chosen free and bound later, so no other process
on the machine can take it in between. A process started again after a stop
binds the port it had before; that port was free only while it was stopped.

This module is over 400 lines because it is the one place that starts, stops,
enrols and wires a whole network (central, gateways, certificates, tokens,
listeners) for both the demo and the tests; the steps are order-dependent and
read best in sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gcx import listeners
from gcx.central.client import OperatorClient
from gcx.config import CentralConfig, GatewayConfig
from gcx.errors import ConfigError, PeerUnreachable
from gcx.gateway.home import create_gateway_home, submit_enrolment
from gcx.reference.demo_path import admit_all, write_demo_settings

MARKER = ".gcx-localnet"
# The name of each demo gateway's administering system (its admin_token).
ADMIN_SYSTEM = "admin-system"
# What Python runs for ``gcx``; tests may start a gateway through another program.
GCX_PROGRAM = ("-m", "gcx.cli.main")
_Config = TypeVar("_Config", CentralConfig, GatewayConfig)


def _with_demo_service_desk(config: _Config) -> _Config:
    """The service desk the demo's pages name: a drama telephone number, a reserved domain."""
    return dataclasses.replace(
        config,
        service_desk_name="the gcx demo service desk",
        service_desk_phone="01632 960 000",
        service_desk_email="service.desk@gcx-demo.example",
        service_desk_hours="Monday to Friday, 8am to 6pm",
    )


def free_port() -> int:
    """A port that was free a moment ago, for third-party programs that cannot be handed a
    socket (the benchmarks' sshd and Postfix baselines).

    Another process may take it before the program binds it: gcx's own servers are
    handed bound sockets instead (see the module docstring).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class OrganisationSpec:
    code: str
    name: str
    type: str


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    organisations: tuple[OrganisationSpec, ...]
    account: str  # the demo user whose API token network.json lists


DEMO_GATEWAYS = (
    GatewaySpec(
        "tower-hamlets",
        (OrganisationSpec("E09000030", "London Borough of Tower Hamlets", "local-authority"),),
        "benefits.officer",
    ),
    GatewaySpec(
        "dwp",
        (OrganisationSpec("DWP", "Department for Work and Pensions", "central-government"),),
        "claims.processor",
    ),
    GatewaySpec(
        "met-police",
        (OrganisationSpec("MPS", "Metropolitan Police Service", "police"),),
        "safeguarding.officer",
    ),
)


@dataclass
class GatewayProcess:
    spec: GatewaySpec
    home: Path
    config: GatewayConfig
    process: subprocess.Popen[bytes] | None = None
    # The demo person's own API token (spec.account, staff), issued by the person.
    token: str = ""
    # A system's token with the admin role (ADMIN_SYSTEM), for publishing services,
    # quotas and the call log: administration over the API is a system's, not a person's.
    admin_token: str = ""

    @property
    def codes(self) -> list[str]:
        return [o.code for o in self.spec.organisations]


@dataclass
class LocalNetwork:
    """Central plus gateways under one directory."""

    root: Path
    network_name: str = "gcx-demo"
    gateways: dict[str, GatewayProcess] = field(default_factory=dict)
    central_process: subprocess.Popen[bytes] | None = None
    central_port: int = 0
    operator_token: str = ""
    poll_seconds: float = 5.0
    database_url: Callable[[str], str] = lambda _name: ""
    env: dict[str, str] = field(default_factory=dict)
    # Central accounts made while taking the organisations through the Code of
    # Connection (officers, assessors), by role and organisation.
    compliance_tokens: dict[str, str] = field(default_factory=dict)
    # Reference service backends (gcx.reference) and whether start() sets up
    # the DWP customer lookup and free school meals check: published by DWP's
    # gateway and granted to the council.
    reference_services: bool = False
    # Whether central and the gateways serve their web pages, and the demo people
    # made to sign in to them (start() fills web_users).
    web: bool = False
    central_web_port: int = 0
    web_users: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    extra_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Sockets bound for a process not yet started, by process ("central" or a
    # gateway's name) and listener name; handed over and closed here when it starts.
    _held: dict[str, dict[str, socket.socket]] = field(default_factory=dict, init=False, repr=False)

    @property
    def central_home(self) -> Path:
        return self.root / "central"

    @property
    def central_url(self) -> str:
        return f"https://127.0.0.1:{self.central_port}"

    @property
    def anchor(self) -> Path:
        return self.central_home / "anchor.pem"

    # -- processes ---------------------------------------------------------

    def spawn(
        self,
        args: list[str],
        log_name: str,
        sockets: dict[str, socket.socket] | None = None,
        program: tuple[str, ...] = GCX_PROGRAM,
    ) -> subprocess.Popen[bytes]:
        """Start ``gcx ARGS``, logging to logs/LOG_NAME.log, handing it the bound ``sockets``.

        ``program`` is what Python runs in place of ``gcx`` (tests start a gateway
        with faults injected through tests/integration/fault_gateway.py).
        """
        sockets = sockets or {}
        handed, fds = listeners.handed_down(sockets)
        environment = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", **handed}
        if not sockets:
            environment.pop(listeners.ENVIRONMENT, None)
        # The child keeps its own copies of the log and socket descriptors; ours close here.
        try:
            with (self.root / "logs" / f"{log_name}.log").open("ab") as log:
                return subprocess.Popen(
                    [sys.executable, *program, *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    start_new_session=True,
                    pass_fds=fds,
                )
        finally:
            for sock in sockets.values():
                sock.close()

    def _hold(self, process: str, listener: str) -> int:
        """Bind a socket for ``process``'s ``listener`` on a port the kernel chooses; the port."""
        sock = listeners.bind(listen=True)
        self._held.setdefault(process, {})[listener] = sock
        return listeners.port_of(sock)

    def _sockets_for(self, process: str, ports: dict[str, int]) -> dict[str, socket.socket]:
        """The held sockets for ``process``'s listeners; for a restart, the same ports bound
        again (a port of 0 is a listener the process does not open)."""
        held = self._held.pop(process, {})
        sockets: dict[str, socket.socket] = {}
        try:
            for name, port in ports.items():
                if not port:
                    continue
                sock = held.pop(name, None)
                if sock is not None and listeners.port_of(sock) != port:
                    sock.close()  # the configuration was changed since enrolment
                    sock = None
                if sock is None:
                    try:
                        sock = listeners.bind(port=port, listen=True)
                    except OSError as exc:
                        raise ConfigError(
                            f"Port {port}, which {process} listened on before it stopped, is "
                            f"now taken by another process ({exc.strerror}); start the network "
                            "again."
                        ) from exc
                sockets[name] = sock
        except BaseException:
            for sock in sockets.values():
                sock.close()
            raise
        finally:
            for sock in held.values():
                sock.close()
        return sockets

    def prepare(self) -> None:
        if self.root.exists():
            if (self.root / MARKER).exists():
                shutil.rmtree(self.root)
            elif any(self.root.iterdir()):
                raise ConfigError(
                    f"{self.root} exists and is not a gcx demo directory; choose another --dir."
                )
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        (self.root / MARKER).write_text("made by gcx; deleted and remade by the next run\n")

    def client_for(self, token: str) -> OperatorClient:
        """A central API client for another central account (assessor, officer)."""
        return OperatorClient(self.central_url, self.anchor, token)

    def init_central(self) -> None:
        self.central_port = self._hold("central", "api")
        _run_cli(
            [
                "central",
                "init",
                "--home",
                str(self.central_home),
                "--network",
                self.network_name,
                "--port",
                str(self.central_port),
                "--database-url",
                self.database_url("central"),
            ],
            self.env,
        )
        # No grace period on the demo network, so a lapsed approval takes effect at once.
        write_demo_settings(self.central_home)
        if self.web:
            self.central_web_port = self._hold("central", "web")
            config = CentralConfig.load(self.central_home)
            _with_demo_service_desk(
                dataclasses.replace(config, web_port=self.central_web_port)
            ).save()
        self.operator_token = _run_cli(
            ["central", "operator", "add", "--home", str(self.central_home), "operator"], self.env
        ).strip()

    def start_central(self) -> None:
        sockets = self._sockets_for(
            "central", {"api": self.central_port, "web": self.central_web_port}
        )
        self.central_process = self.spawn(
            ["central", "serve", "--home", str(self.central_home)], "central", sockets
        )

    def operator(self) -> OperatorClient:
        return OperatorClient(self.central_url, self.anchor, self.operator_token)

    async def wait_for_central(self, timeout: float = 60.0) -> None:
        await _wait_http(
            f"{self.central_url}/api/v1/health",
            timeout,
            anchor=self.anchor,
            process=self.central_process,
        )

    async def register(self, specs: tuple[GatewaySpec, ...]) -> None:
        """Register the organisations and take each through the Code of Connection."""
        async with self.operator() as operator:
            for spec in specs:
                for org in spec.organisations:
                    await operator.add_organisation(org.code, org.name, org.type)
            self.compliance_tokens = await admit_all(
                operator,
                self.client_for,
                [o.code for s in specs for o in s.organisations],
                tokens=self.compliance_tokens,
            )

    async def enrol(self, spec: GatewaySpec, *, approve: bool = True) -> GatewayProcess:
        home = self.root / spec.name
        config, request = create_gateway_home(
            home,
            name=spec.name,
            organisations=[o.code for o in spec.organisations],
            central_url=self.central_url,
            anchor=self.anchor,
            peer_port=self._hold(spec.name, "peer"),
            api_port=self._hold(spec.name, "api"),
            database_url=self.database_url(spec.name),
            directory_poll_seconds=self.poll_seconds,
        )
        if self.web:
            config = _with_demo_service_desk(
                dataclasses.replace(config, web_port=self._hold(spec.name, "web"))
            )
            config.save()
        result = await submit_enrolment(config, request)
        if approve:
            async with self.operator() as operator:
                await operator.approve(result["id"], "demo network: Code of Connection approved")
        gateway = GatewayProcess(spec, home, config)
        self.gateways[spec.name] = gateway
        return gateway

    def start_gateway(self, name: str, *, program: tuple[str, ...] = GCX_PROGRAM) -> None:
        """Start ``name``'s ``gateway serve``, through ``program`` if given (see :meth:`spawn`)."""
        gateway = self.gateways[name]
        # The ports in the home's configuration, which tests may have changed since enrolment.
        config = GatewayConfig.load(gateway.home)
        sockets = self._sockets_for(
            name, {"peer": config.peer_port, "api": config.api_port, "web": config.web_port}
        )
        gateway.process = self.spawn(
            ["gateway", "serve", "--home", str(gateway.home)],
            name,
            sockets,
            program,
        )

    def add_token(self, name: str, account: str, roles: tuple[str, ...] = ("staff",)) -> str:
        """A person's API token, made the only way a person's token is made: by the person.

        The person is added first if new (with ``roles``, as an administrator adds
        people); then the token is issued to them by the use case behind their
        account page (in this process, as :meth:`add_web_user` does, rather than
        through a browser). It carries the person's roles.
        """
        import sqlalchemy as sa

        from gcx.clock import SystemClock
        from gcx.gateway.tokens import TokenService
        from gcx.store import open_database
        from gcx.store.schema_web import web_users

        gateway = self.gateways[name]
        known = {p["username"]: p for p in self.web_users.get(name, [])}
        if account not in known:
            self.add_web_user(name, account, _person(account), roles, gateway.codes[0])
        elif not set(roles) <= set(known[account]["roles"]):
            raise ConfigError(f"{account} on {name} does not hold the roles {roles}.")
        database = open_database(gateway.config.db_url)
        try:
            with database.read() as conn:
                person_id = conn.execute(
                    sa.select(web_users.c.id).where(web_users.c.username == account)
                ).scalar_one()
            tokens = TokenService(database, gateway.codes, SystemClock())
            return tokens.issue_to_person(person_id)
        finally:
            database.dispose()

    def add_system_token(self, name: str, account: str, roles: tuple[str, ...]) -> str:
        """A system's API token, made by the use case behind ``gcx gateway token add``.

        In this process rather than through the command, as :meth:`add_web_user`
        does: a network start would otherwise spend a Python start-up on each.
        """
        from gcx.clock import SystemClock
        from gcx.gateway.tokens import TokenService
        from gcx.store import open_database

        gateway = self.gateways[name]
        database = open_database(gateway.config.db_url)
        try:
            tokens = TokenService(database, gateway.codes, SystemClock())
            return tokens.add(gateway.codes[0], account, "system", list(roles))
        finally:
            database.dispose()

    def add_mailbox(self, name: str, organisation: str, mailbox: str, members: list[str]) -> None:
        """A shared mailbox, made by the use case behind ``gcx gateway mailbox add``."""
        from gcx.clock import SystemClock
        from gcx.gateway.messages.mailboxes import MailboxService
        from gcx.store import open_database

        gateway = self.gateways[name]
        database = open_database(gateway.config.db_url)
        try:
            MailboxService(database, gateway.codes, SystemClock()).add(
                organisation, mailbox, members
            )
        finally:
            database.dispose()

    async def wait_for_gateway(self, name: str, timeout: float = 60.0) -> None:
        gateway = self.gateways[name]
        await _wait_http(
            f"{gateway.config.api_url}/api/v1/health", timeout, process=gateway.process
        )

    async def start(self, specs: tuple[GatewaySpec, ...] = DEMO_GATEWAYS) -> None:
        """Make and start a whole network: central, registry, gateways, tokens."""
        self.prepare()
        self.init_central()
        self.start_central()
        await self.wait_for_central()
        await self.register(specs)
        for spec in specs:
            await self.enrol(spec)
            self.start_gateway(spec.name)
        for spec in specs:
            gateway = self.gateways[spec.name]
            gateway.token = self.add_token(spec.name, spec.account, ("staff",))
            gateway.admin_token = self.add_system_token(spec.name, ADMIN_SYSTEM, ("admin",))
        if "tower-hamlets" in self.gateways:
            # The council's shared benefits mailbox, which DWP writes to.
            self.add_mailbox("tower-hamlets", "E09000030", "benefits", ["benefits.officer"])
        await asyncio.gather(*(self.wait_for_gateway(s.name) for s in specs))
        if self.web:
            self.add_demo_web_users(specs)
        if self.reference_services and {"dwp", "tower-hamlets"} <= set(self.gateways):
            from gcx.reference.network import set_up_dwp_lookup, set_up_fsm_check

            await set_up_dwp_lookup(self)
            await set_up_fsm_check(self)

    def add_web_user(
        self,
        where: str,
        username: str,
        name: str,
        roles: tuple[str, ...],
        organisation: str | None,
    ) -> dict[str, Any]:
        """Make a person who signs in to ``where`` ("central" or a gateway's name)."""
        from gcx.cli.web import open_accounts

        side, home = (
            ("central", self.central_home)
            if where == "central"
            else ("gateway", self.gateways[where].home)
        )
        # In this process rather than through the CLI: it is the same code, and the demo
        # makes a dozen people, each of whom would otherwise start a Python process.
        accounts, _ = open_accounts(side, home)
        try:
            made = accounts.add_user(username, name, list(roles), organisation, by="demo")
        finally:
            accounts.db.dispose()
        person = {
            "name": name,
            "roles": list(roles),
            "organisation": organisation,
            "username": made.username,
            "password": made.password,
            "totp_secret": made.totp_secret,
        }
        self.web_users.setdefault(where, []).append(person)
        return person

    def add_demo_web_users(self, specs: tuple[GatewaySpec, ...]) -> None:
        """One person per role: staff and an administrator on each gateway; central's
        operator and assessor, and the council's security and sign-off officers."""
        for spec in specs:
            code = spec.organisations[0].code
            if spec.account not in {p["username"] for p in self.web_users.get(spec.name, [])}:
                self.add_web_user(spec.name, spec.account, _person(spec.account), ("staff",), code)
            # The demo's staff chose to be listed, so that colleagues at the other
            # organisations find them by name in the address book.
            self.list_in_address_book(spec.name, spec.account, code)
            self.add_web_user(
                spec.name, f"{spec.name}.admin", f"{spec.name} administrator", ("admin",), code
            )
        self.add_web_user("central", "network.operator", "Network Operator", ("operator",), None)
        self.add_web_user("central", "lead.assessor", "Lead Assessor", ("assessor",), None)
        for spec in specs:
            code = spec.organisations[0].code
            lower = code.lower()
            self.add_web_user(
                "central", f"iso.{lower}", f"{code} security officer", ("security-officer",), code
            )
            self.add_web_user(
                "central",
                f"siro.{lower}",
                f"{code} senior information risk owner",
                ("sign-off",),
                code,
            )

    def list_in_address_book(self, where: str, username: str, organisation: str) -> None:
        """Record that ``username`` chose to be listed, as they would on "Your account"."""
        from gcx.config import GatewayConfig
        from gcx.gateway.messages.addresses import set_person_listed
        from gcx.gateway.runtime import Gateway

        gateway = Gateway.open(GatewayConfig.load(self.gateways[where].home))
        try:
            set_person_listed(gateway, organisation, username, True)
        finally:
            gateway.db.dispose()

    def web_url(self, where: str) -> str:
        # "localhost" rather than 127.0.0.1: browsers allow security keys (WebAuthn) on
        # localhost but never on a bare IP address. It is the same loopback listener.
        port = self.central_web_port if where == "central" else self.gateways[where].config.web_port
        return f"http://localhost:{port}"

    def describe(self) -> dict[str, Any]:
        """What ``network.json`` holds."""
        return {
            "network": self.network_name,
            "central": {
                "url": self.central_url,
                "anchor": str(self.anchor),
                "operator_token": self.operator_token,
            },
            "gateways": [
                {
                    "name": g.spec.name,
                    "organisations": g.codes,
                    "peer_address": g.config.peer_address,
                    "api_url": g.config.api_url,
                    "api_token": g.token,
                    "api_account": f"{g.spec.account}@{g.codes[0]}",
                    "admin_api_token": g.admin_token,
                    "admin_api_account": f"{ADMIN_SYSTEM}@{g.codes[0]}",
                    "tls_certificate": str(g.home / "tls.pem"),
                    "tls_key": str(g.home / "tls.key"),
                    "tls_key_passphrase_file": str(g.home / "secrets" / "key-passphrase"),
                    "ca_certificate": str(self.anchor),
                    "home": str(g.home),
                }
                for g in self.gateways.values()
            ],
            "web": (
                {
                    where: {"url": self.web_url(where), "people": people}
                    for where, people in self.web_users.items()
                }
                if self.web
                else {}
            ),
        }

    def write_description(self) -> Path:
        path = self.root / "network.json"
        path.write_text(json.dumps(self.describe(), indent=2) + "\n")
        os.chmod(path, 0o600)  # it holds tokens
        return path

    def stop_process(
        self, process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM
    ) -> None:
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> None:
        for held in self._held.values():
            for sock in held.values():
                sock.close()
        self._held.clear()
        for process in self.extra_processes:
            self.stop_process(process)
        for gateway in self.gateways.values():
            self.stop_process(gateway.process)
        self.stop_process(self.central_process)


def _person(account: str) -> str:
    """A display name from a demo account name: ``benefits.officer`` → ``Benefits Officer``."""
    return " ".join(part.capitalize() for part in account.replace("_", ".").split("."))


def _run_cli(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gcx.cli.main", *args],
        capture_output=True,
        check=False,
        env={**os.environ, **env},
        timeout=120,
    )
    if result.returncode != 0:
        raise ConfigError(f"gcx {' '.join(args[:3])} failed: {result.stderr.decode()[-500:]}")
    return result.stdout.decode()


def _http_status(url: str, context: ssl.SSLContext | None) -> int | None:
    """One blocking GET: the status, or None if nothing answered in time."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None


async def _wait_http(
    url: str,
    timeout: float,
    *,
    anchor: Path | None = None,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``url`` until it answers 200.

    Each probe is a blocking request in a thread with its own socket timeout,
    not an event-loop request cancelled by a timeout: a connection cancelled
    half-made can be left open, and the readiness probe is the one place that
    races a server's start on purpose.
    """
    from gcx import crypto

    context = crypto.client_context(anchor) if anchor else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise PeerUnreachable(
                f"The process serving {url} exited with {process.returncode}; see its log."
            )
        if await asyncio.to_thread(_http_status, url, context) == 200:
            return
        await asyncio.sleep(0.2)
    raise PeerUnreachable(f"{url} did not become ready within {timeout:.0f} seconds.")
