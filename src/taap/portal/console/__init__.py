"""The portal's console pages on each app: **Try it** (the four steps in the browser) and
**Usage** (issuances, calls and refusals from the audit events); docs/portal.md."""
