"""Usage counters: token issuances, API calls and refusals per client, kind, ``error_code``
and minute, kept in the registry's database so that every node adds to the same rows
(docs/portal.md, "Usage"). The token server's audit and the guard's feed a
:class:`~taap.server.usage.recorder.UsageRecorder` through a plain callable; it batches the
counts in memory and upserts them in the background."""
