"""The Dagster code location: one explicit Definitions object."""

from __future__ import annotations

import dagster as dg

defs = dg.Definitions()
