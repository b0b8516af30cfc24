"""Test plugin that fails to import, like one whose dependency is missing."""

raise ImportError("hiergen_test_broken: simulated missing dependency 'nonexistent_lib'")
