"""The suite's root: every test folder (tests/ and each kind's kinds/<kind>/tests/) gets the
real-service fixtures of tests/fixtures.py."""

pytest_plugins = ("tests.fixtures",)
