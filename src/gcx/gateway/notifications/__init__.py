"""Email alerts: telling a person at their ordinary address that something waits for them.

A person may choose, on "Your account", to be told by email when a message
arrives for them (:mod:`.settings`). The email says only that there is one,
its marking and the sending organisation's name ("You have a new
OFFICIAL-SENSITIVE message from Department for Work and Pensions") and links
to the gateway: nothing of the message itself leaves the exchange.

It rides the one outbox, never beside it:

* when a message is stored (``gcx.gateway.messages.receive``), a row of kind
  ``notification`` is written for each person who asked for alerts and can
  read the copy (their own, a shared mailbox they belong to, or the whole
  organisation's, for its administrators), in the same transaction as the
  message (:mod:`.queue`). A crash after that commit cannot lose an alert
  that was due; a crash before it loses the message too, and the sending
  gateway sends it again. The rows are written under a savepoint, so an
  alert that cannot be queued is logged and never fails the delivery;
* the one worker claims them after commit and hands them to
  :class:`~.carrier.NotificationCarrier`, which sends them through the
  organisation's mail relay (:mod:`.relay`) and records each outcome through
  the one lifecycle, with backoff and expiry, like every other kind.

Exactly once is not something SMTP can give: if the gateway dies after the
relay took an alert and before the row is marked, the next claim sends it
again. That window is one round trip wide, and every try of a row carries
the same ``Message-ID``, so mail systems that drop repeats (and people
reading them) see one alert.
"""
