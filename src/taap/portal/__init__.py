"""The developer portal: self-service sign-up, apps, keys and approvals on the registry
(docs/portal.md)."""
