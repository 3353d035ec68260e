"""Channel transports behind one small interface (:class:`dispatcher.channels.base.Transport`).

- ``dry_run`` (:mod:`.files`): one JSON file per message in the outbox folder, the default;
- ``smtp`` (:mod:`.smtp`): e-mail with text and HTML parts, STARTTLS and login by setting;
- ``webhook`` (:mod:`.webhook`): SMS, push and voice through a signed HTTP POST to a provider;
- ``pdf`` (:mod:`.letters`): letters rendered to PDF in the outbox folder for print and mail.
"""
