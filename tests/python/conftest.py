"""Shared pytest setup: a skipped test is a failure here.

The suite installs everything it needs, so a skip can only mean something is missing or
broken; CI must not pass on it.
"""


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = 1
