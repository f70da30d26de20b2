"""Executable checks of the papers' claims, the reports, and the ``collapsekit`` CLI front door."""
