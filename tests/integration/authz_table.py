"""Who may reach each route gcx serves: the table test_authorisation.py walks.

One entry per (application, method, path pattern), naming the roles whose
request gets past the route's authorisation (see authz_walk.Outcome.reached
for what counts). Add a route and the test fails until it has a line here;
remove one and its line must go too.

The roles, per application:

* ``peer`` (a gateway's peer port, mutual TLS): no client certificate, or a
  member gateway's (DWP's).
* ``local`` (the council gateway's API, tokens): none; the council's staff,
  administrator, security officer and back-office system; staff of the other
  organisation the same gateway hosts; staff of another gateway (whose token
  this gateway has never issued).
* ``gateway-web`` (its pages, sessions): none; the council's staff,
  administrator and security officer; staff of the other hosted organisation.
* ``central-api`` and ``central-web``: none; the network operator; an
  assessor; the council's security officer (drafting) and sign-off officer;
  another organisation's (DWP's) security officer.

The message routes are walked with real messages of the council's staff
member, so they show who may see a person's message (the sender only: not
the administrator, not a system, not the other organisation); the other
routes are walked with ids naming nothing, so they show the route's gate.
"""

from __future__ import annotations

ANYONE = frozenset({"*"})  # public: every role of the application
TOKEN_HOLDERS = frozenset({"staff", "admin", "system", "security-officer", "other-org-staff"})
SIGNED_IN = frozenset(
    {"staff", "admin", "security-officer", "other-org-staff"}
    | {"operator", "assessor", "sign-off", "other-org-officer"}
)
CENTRAL_ACCOUNTS = frozenset(
    {"operator", "assessor", "security-officer", "sign-off", "other-org-officer"}
)
OFFICERS = frozenset({"security-officer", "other-org-officer"})  # drafting, either organisation
SENDERS = frozenset({"staff", "admin", "system", "other-org-staff"})
MAIL_USERS = frozenset({"admin", "other-org-staff", "staff"})  # the mail pages

ROLES = {
    "peer": frozenset({"none", "member"}),
    "local": TOKEN_HOLDERS | {"none", "other-gateway-staff"},
    "gateway-web": frozenset({"none", "staff", "admin", "security-officer", "other-org-staff"}),
    "central-api": CENTRAL_ACCOUNTS | {"none"},
    "central-web": CENTRAL_ACCOUNTS | {"none"},
}

TABLE: dict[tuple[str, str, str], frozenset[str]] = {
    # -- peer
    ("peer", "GET", "/peer/v1/addresses"): frozenset({"member"}),
    ("peer", "GET", "/peer/v1/health"): frozenset({"member"}),
    ("peer", "POST", "/peer/v1/calls"): frozenset({"member"}),
    ("peer", "POST", "/peer/v1/envelopes"): frozenset({"member"}),
    ("peer", "POST", "/peer/v1/ping"): frozenset({"member"}),
    ("peer", "POST", "/peer/v1/read-receipts"): frozenset({"member"}),
    ("peer", "POST", "/peer/v1/recalls"): frozenset({"member"}),
    ("peer", "POST", "/peer/v1/transfers"): frozenset({"member"}),
    ("peer", "POST", "/peer/v1/transfers/{id}/complete"): frozenset({"member"}),
    ("peer", "PUT", "/peer/v1/transfers/{id}/chunks/{n}"): frozenset({"member"}),
    ("peer", "PUT", "/peer/v1/transfers/{id}/early/{n}"): frozenset({"member"}),
    # -- local
    ("local", "*", "/services/{provider}/{service}"): TOKEN_HOLDERS,
    ("local", "*", "/services/{provider}/{service}/{path}"): TOKEN_HOLDERS,
    ("local", "DELETE", "/api/v1/uploads/{id}"): TOKEN_HOLDERS,
    ("local", "GET", "/api/v1/health"): ANYONE,
    ("local", "GET", "/api/v1/messages"): TOKEN_HOLDERS,
    ("local", "GET", "/api/v1/messages/{id}"): frozenset({"staff"}),
    ("local", "GET", "/api/v1/messages/{id}/attachments/{index}"): frozenset({"staff"}),
    ("local", "GET", "/api/v1/messages/{id}/evidence"): frozenset({"staff"}),
    ("local", "GET", "/api/v1/messages/{id}/status"): frozenset({"staff"}),
    ("local", "GET", "/api/v1/openapi.json"): ANYONE,
    ("local", "GET", "/api/v1/services"): TOKEN_HOLDERS,
    ("local", "GET", "/api/v1/services/calls"): frozenset({"admin", "security-officer"}),
    ("local", "GET", "/api/v1/services/calls/{id}/evidence"): frozenset(
        {"admin", "security-officer"}
    ),
    ("local", "GET", "/api/v1/services/{provider}/{service}/openapi.json"): TOKEN_HOLDERS,
    ("local", "GET", "/api/v1/status"): TOKEN_HOLDERS,
    ("local", "GET", "/api/v1/transfers"): TOKEN_HOLDERS,
    ("local", "GET", "/api/v1/transfers/{id}"): TOKEN_HOLDERS,
    ("local", "GET", "/api/v1/transfers/{id}/files/{n}"): TOKEN_HOLDERS,
    ("local", "OPTIONS", "/api/v1/uploads"): ANYONE,
    ("local", "HEAD", "/api/v1/uploads/{id}"): TOKEN_HOLDERS,
    ("local", "PATCH", "/api/v1/uploads/{id}"): TOKEN_HOLDERS,
    ("local", "POST", "/api/v1/messages"): SENDERS,
    ("local", "POST", "/api/v1/messages/{id}/recall"): frozenset({"staff"}),
    ("local", "POST", "/api/v1/ping"): TOKEN_HOLDERS,
    ("local", "POST", "/api/v1/services/grants/{id}/revoke"): frozenset({"admin"}),
    ("local", "POST", "/api/v1/services/groups"): frozenset({"admin"}),
    ("local", "POST", "/api/v1/services/published"): frozenset({"admin"}),
    ("local", "POST", "/api/v1/services/published/{service}/grants"): frozenset({"admin"}),
    ("local", "POST", "/api/v1/services/published/{service}/withdraw"): frozenset({"admin"}),
    ("local", "POST", "/api/v1/transfers"): SENDERS,
    ("local", "POST", "/api/v1/transfers/preflight"): SENDERS,
    ("local", "POST", "/api/v1/uploads"): TOKEN_HOLDERS,
    ("local", "PUT", "/api/v1/transfers/policy"): frozenset({"admin"}),
    # -- gateway-web
    ("gateway-web", "GET", "/"): SIGNED_IN,
    ("gateway-web", "GET", "/account"): SIGNED_IN,
    ("gateway-web", "GET", "/account/password"): SIGNED_IN,
    ("gateway-web", "GET", "/account/security-keys"): SIGNED_IN,
    ("gateway-web", "GET", "/account/tokens"): SIGNED_IN,
    ("gateway-web", "GET", "/account/tokens/{id}/revoke"): SIGNED_IN,
    ("gateway-web", "GET", "/account/address-book"): MAIL_USERS,
    ("gateway-web", "GET", "/account/alerts"): MAIL_USERS,
    ("gateway-web", "GET", "/address-book"): MAIL_USERS,
    ("gateway-web", "GET", "/admin/address-book"): frozenset({"admin"}),
    ("gateway-web", "GET", "/drafts"): MAIL_USERS,
    ("gateway-web", "GET", "/drafts/{id}"): MAIL_USERS,
    ("gateway-web", "GET", "/drafts/{id}/check"): MAIL_USERS,
    ("gateway-web", "GET", "/drafts/{id}/delete"): MAIL_USERS,
    ("gateway-web", "GET", "/messages/{id}/forward"): frozenset({"staff"}),
    ("gateway-web", "GET", "/messages/{id}/reply"): frozenset({"staff"}),
    ("gateway-web", "GET", "/messages/{id}/reply-all"): frozenset({"staff"}),
    ("gateway-web", "GET", "/messages/{id}/sent"): frozenset({"staff"}),
    ("gateway-web", "POST", "/account/address-book"): MAIL_USERS,
    ("gateway-web", "POST", "/account/alerts"): MAIL_USERS,
    ("gateway-web", "POST", "/admin/address-book"): frozenset({"admin"}),
    ("gateway-web", "POST", "/drafts/{id}/delete"): MAIL_USERS,
    ("gateway-web", "POST", "/drafts/{id}/send"): MAIL_USERS,
    ("gateway-web", "GET", "/activity"): SIGNED_IN,
    ("gateway-web", "GET", "/admin"): frozenset({"admin"}),
    ("gateway-web", "GET", "/admin/people"): frozenset({"admin"}),
    ("gateway-web", "GET", "/admin/people/add"): frozenset({"admin"}),
    ("gateway-web", "GET", "/admin/people/{username}"): frozenset({"admin"}),
    ("gateway-web", "GET", "/admin/tokens"): frozenset({"admin"}),
    ("gateway-web", "GET", "/admin/tokens/add"): frozenset({"admin"}),
    ("gateway-web", "GET", "/admin/tokens/revoke"): frozenset({"admin"}),
    ("gateway-web", "GET", "/assets/{name}"): ANYONE,
    ("gateway-web", "GET", "/assets/fonts/{filename}"): ANYONE,
    ("gateway-web", "GET", "/assets/images/{filename}"): ANYONE,
    ("gateway-web", "GET", "/compose"): frozenset({"admin", "other-org-staff", "staff"}),
    ("gateway-web", "GET", "/files"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "GET", "/files/send"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "GET", "/files/{id}"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "GET", "/files/{id}/all.zip"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "GET", "/files/{id}/files/{n}"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "GET", "/files/{id}/receipts/{organisation}"): frozenset(
        {"other-org-staff", "staff"}
    ),
    ("gateway-web", "GET", "/files/{id}/live"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "GET", "/inbox"): frozenset({"admin", "other-org-staff", "staff"}),
    ("gateway-web", "GET", "/lookups"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "GET", "/messages/{id}"): frozenset({"staff"}),
    ("gateway-web", "GET", "/messages/{id}/attachments/{index}"): frozenset({"staff"}),
    ("gateway-web", "GET", "/messages/{id}/evidence"): frozenset({"staff"}),
    ("gateway-web", "GET", "/messages/{id}/recall"): frozenset({"staff"}),
    ("gateway-web", "GET", "/messages/{id}/status"): frozenset({"staff"}),
    ("gateway-web", "GET", "/sent"): frozenset({"admin", "other-org-staff", "staff"}),
    ("gateway-web", "GET", "/sign-in"): ANYONE,
    ("gateway-web", "GET", "/sign-in/code"): ANYONE,
    ("gateway-web", "GET", "/sign-in/help"): ANYONE,
    ("gateway-web", "GET", "/help/markings"): ANYONE,
    ("gateway-web", "GET", "/signed-out"): ANYONE,
    ("gateway-web", "POST", "/account/password"): SIGNED_IN,
    ("gateway-web", "POST", "/account/security-keys"): SIGNED_IN,
    ("gateway-web", "POST", "/account/security-keys/options"): SIGNED_IN,
    ("gateway-web", "POST", "/account/security-keys/{id}/remove"): SIGNED_IN,
    ("gateway-web", "POST", "/account/tokens"): SIGNED_IN,
    ("gateway-web", "POST", "/account/tokens/revoke"): SIGNED_IN,
    ("gateway-web", "POST", "/admin/people/add"): frozenset({"admin"}),
    ("gateway-web", "POST", "/admin/people/{username}/disable"): frozenset({"admin"}),
    ("gateway-web", "POST", "/admin/people/{username}/reset"): frozenset({"admin"}),
    ("gateway-web", "POST", "/admin/people/{username}/roles"): frozenset({"admin"}),
    ("gateway-web", "POST", "/admin/people/{username}/unlock"): frozenset({"admin"}),
    ("gateway-web", "POST", "/admin/tokens/add"): frozenset({"admin"}),
    ("gateway-web", "POST", "/admin/tokens/revoke"): frozenset({"admin"}),
    ("gateway-web", "POST", "/compose"): frozenset({"admin", "other-org-staff", "staff"}),
    ("gateway-web", "POST", "/files/send"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "POST", "/lookups"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "POST", "/lookups/free-school-meals"): frozenset({"other-org-staff", "staff"}),
    ("gateway-web", "POST", "/messages/{id}/recall"): frozenset({"staff"}),
    ("gateway-web", "POST", "/session/keep-alive"): SIGNED_IN,
    ("gateway-web", "POST", "/sign-in"): ANYONE,
    ("gateway-web", "POST", "/sign-in/code"): ANYONE,
    ("gateway-web", "POST", "/sign-in/key"): ANYONE,
    ("gateway-web", "POST", "/sign-in/key/options"): SIGNED_IN,
    ("gateway-web", "POST", "/sign-out"): SIGNED_IN,
    # -- central-api
    ("central-api", "GET", "/api/v1/audit/checkpoint"): ANYONE,
    ("central-api", "GET", "/api/v1/audit/verify"): frozenset({"operator"}),
    ("central-api", "GET", "/api/v1/checkpoints/{gateway}"): ANYONE,
    ("central-api", "GET", "/api/v1/compliance/accounts"): frozenset({"operator"}),
    ("central-api", "GET", "/api/v1/compliance/assessments/{id}"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/catalogues"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/catalogues/{version}"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/consistency"): frozenset({"assessor", "operator"}),
    ("central-api", "GET", "/api/v1/compliance/dashboard"): frozenset({"assessor", "operator"}),
    ("central-api", "GET", "/api/v1/compliance/evidence/{id}"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/extensions/{id}"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/me"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/notifications"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/openapi.json"): ANYONE,
    ("central-api", "GET", "/api/v1/compliance/organisations/{code}/standing"): frozenset(
        {"assessor", "operator"}
    ),
    ("central-api", "GET", "/api/v1/compliance/register"): frozenset({"assessor", "operator"}),
    ("central-api", "GET", "/api/v1/compliance/report"): frozenset({"assessor", "operator"}),
    ("central-api", "GET", "/api/v1/compliance/statements"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/statements/{id}"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/compliance/statements/{id}/export"): CENTRAL_ACCOUNTS,
    ("central-api", "GET", "/api/v1/directory"): ANYONE,
    ("central-api", "GET", "/api/v1/enrolments"): frozenset({"operator"}),
    ("central-api", "GET", "/api/v1/enrolments/{id}"): ANYONE,
    ("central-api", "GET", "/api/v1/flags"): frozenset({"operator"}),
    ("central-api", "GET", "/api/v1/health"): ANYONE,
    ("central-api", "GET", "/api/v1/openapi.json"): ANYONE,
    ("central-api", "GET", "/api/v1/organisations"): frozenset({"operator"}),
    ("central-api", "GET", "/api/v1/services"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/checkpoints"): ANYONE,
    ("central-api", "POST", "/api/v1/compliance/accounts"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/compliance/accounts/{name}/revoke"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/compliance/assessments/{id}/complete"): frozenset(
        {"assessor"}
    ),
    ("central-api", "POST", "/api/v1/compliance/catalogues"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/compliance/extensions"): OFFICERS | {"sign-off"},
    ("central-api", "POST", "/api/v1/compliance/extensions/{id}/grant"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/compliance/extensions/{id}/refuse"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/compliance/organisations/{code}/withdraw"): frozenset(
        {"operator"}
    ),
    ("central-api", "POST", "/api/v1/compliance/selfchecks"): ANYONE,
    ("central-api", "POST", "/api/v1/compliance/statements"): OFFICERS,
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/abandon"): OFFICERS,
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/approve"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/assessments"): frozenset(
        {"assessor"}
    ),
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/decline-sign-off"): frozenset(
        {"sign-off"}
    ),
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/evidence"): frozenset(
        {"other-org-officer", "security-officer"}
    ),
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/reject"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/request-sign-off"): OFFICERS,
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/return"): frozenset(
        {"assessor", "operator"}
    ),
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/second-assessment"): frozenset(
        {"assessor"}
    ),
    ("central-api", "POST", "/api/v1/compliance/statements/{id}/sign-off"): frozenset({"sign-off"}),
    ("central-api", "POST", "/api/v1/compliance/sweep"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/enrolments"): ANYONE,
    ("central-api", "POST", "/api/v1/enrolments/{id}/approve"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/enrolments/{id}/reject"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/gateways/{name}/revoke"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/organisations"): frozenset({"operator"}),
    ("central-api", "POST", "/api/v1/services/changes"): ANYONE,
    ("central-api", "PUT", "/api/v1/compliance/assessments/{id}/results/{control}"): frozenset(
        {"assessor"}
    ),
    ("central-api", "PUT", "/api/v1/compliance/statements/{id}/answers/{control}"): OFFICERS,
    # -- central-web
    ("central-web", "GET", "/"): SIGNED_IN,
    ("central-web", "GET", "/account"): SIGNED_IN,
    ("central-web", "GET", "/account/password"): SIGNED_IN,
    ("central-web", "GET", "/account/security-keys"): SIGNED_IN,
    ("central-web", "GET", "/activity"): SIGNED_IN,
    ("central-web", "GET", "/assets/{name}"): ANYONE,
    ("central-web", "GET", "/assets/fonts/{filename}"): ANYONE,
    ("central-web", "GET", "/assets/images/{filename}"): ANYONE,
    ("central-web", "GET", "/evidence/{id}"): SIGNED_IN,
    ("central-web", "GET", "/network"): frozenset({"assessor", "operator"}),
    ("central-web", "GET", "/network/enrolments"): frozenset({"operator"}),
    ("central-web", "GET", "/network/enrolments/{id}"): frozenset({"operator"}),
    ("central-web", "GET", "/network/extension-request"): frozenset(
        {"other-org-officer", "security-officer", "sign-off"}
    ),
    ("central-web", "GET", "/network/extensions"): frozenset({"operator"}),
    ("central-web", "GET", "/network/extensions/{id}"): frozenset({"operator"}),
    ("central-web", "GET", "/network/gateways/{name}/revoke"): frozenset({"operator"}),
    ("central-web", "GET", "/network/people"): frozenset({"operator"}),
    ("central-web", "GET", "/network/people/add"): frozenset({"operator"}),
    ("central-web", "GET", "/network/people/{username}"): frozenset({"operator"}),
    ("central-web", "GET", "/sign-in"): ANYONE,
    ("central-web", "GET", "/sign-in/code"): ANYONE,
    ("central-web", "GET", "/sign-in/help"): ANYONE,
    ("central-web", "GET", "/help/markings"): ANYONE,
    ("central-web", "GET", "/signed-out"): ANYONE,
    ("central-web", "GET", "/statements"): SIGNED_IN,
    ("central-web", "GET", "/statements/{id}"): SIGNED_IN,
    ("central-web", "GET", "/statements/{id}/answers"): SIGNED_IN,
    ("central-web", "GET", "/statements/{id}/assessment/{area}"): frozenset({"assessor"}),
    ("central-web", "GET", "/statements/{id}/controls/{control}"): frozenset(
        {"other-org-officer", "security-officer"}
    ),
    ("central-web", "POST", "/account/password"): SIGNED_IN,
    ("central-web", "POST", "/account/security-keys"): SIGNED_IN,
    ("central-web", "POST", "/account/security-keys/options"): SIGNED_IN,
    ("central-web", "POST", "/account/security-keys/{id}/remove"): SIGNED_IN,
    ("central-web", "POST", "/network/enrolments/{id}"): frozenset({"operator"}),
    ("central-web", "POST", "/network/extension-request"): frozenset(
        {"other-org-officer", "security-officer", "sign-off"}
    ),
    ("central-web", "POST", "/network/extensions/{id}"): frozenset({"operator"}),
    ("central-web", "POST", "/network/gateways/{name}/revoke"): frozenset({"operator"}),
    ("central-web", "POST", "/network/people/add"): frozenset({"operator"}),
    ("central-web", "POST", "/network/people/{username}/disable"): frozenset({"operator"}),
    ("central-web", "POST", "/network/people/{username}/reset"): frozenset({"operator"}),
    ("central-web", "POST", "/network/people/{username}/roles"): frozenset({"operator"}),
    ("central-web", "POST", "/network/people/{username}/unlock"): frozenset({"operator"}),
    ("central-web", "POST", "/session/keep-alive"): SIGNED_IN,
    ("central-web", "POST", "/sign-in"): ANYONE,
    ("central-web", "POST", "/sign-in/code"): ANYONE,
    ("central-web", "POST", "/sign-in/key"): ANYONE,
    ("central-web", "POST", "/sign-in/key/options"): SIGNED_IN,
    ("central-web", "POST", "/sign-out"): SIGNED_IN,
    ("central-web", "POST", "/statements"): frozenset({"other-org-officer", "security-officer"}),
    ("central-web", "POST", "/statements/{id}/approve"): frozenset({"operator"}),
    ("central-web", "POST", "/statements/{id}/assessment"): frozenset({"assessor"}),
    ("central-web", "POST", "/statements/{id}/assessment/{area}"): frozenset({"assessor"}),
    ("central-web", "POST", "/statements/{id}/complete"): frozenset({"assessor"}),
    ("central-web", "POST", "/statements/{id}/controls/{control}"): frozenset(
        {"other-org-officer", "security-officer"}
    ),
    ("central-web", "POST", "/statements/{id}/controls/{control}/evidence"): frozenset(
        {"other-org-officer", "security-officer"}
    ),
    ("central-web", "POST", "/statements/{id}/decline-sign-off"): frozenset({"sign-off"}),
    ("central-web", "POST", "/statements/{id}/reject"): frozenset({"operator"}),
    ("central-web", "POST", "/statements/{id}/request-sign-off"): frozenset(
        {"other-org-officer", "security-officer"}
    ),
    ("central-web", "POST", "/statements/{id}/reconfirm"): frozenset(
        {"other-org-officer", "security-officer"}
    ),
    ("central-web", "POST", "/statements/{id}/return"): frozenset({"assessor", "operator"}),
    ("central-web", "POST", "/statements/{id}/sign-off"): frozenset({"sign-off"}),
}

# Routes that still read and validate the body before checking the role, so a
# role without the right is refused 400/422 (validation) rather than 403. The
# walk accepts that answer for them, and only for them, until the handler
# checks the role first; a 2xx or 404 for a refused role still fails. None is
# left: every handler checks the role before it reads the body, and an entry
# added here must name the route and say why.
VALIDATES_FIRST: frozenset[tuple[str, str, str]] = frozenset()
