"""A local TAAP installation for the demo and end-to-end tests (token server + sample APIs)."""

from __future__ import annotations

from taap.sandbox.servers import Sandbox, running_sandbox
from taap.sandbox.walkthrough import DemoResult, Step, run_demo

__all__ = ["DemoResult", "Sandbox", "Step", "run_demo", "running_sandbox"]
