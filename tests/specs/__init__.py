"""Tests of rlbench.specs, one file per module (a package: ``test_base`` is also a widgets test's name)."""
