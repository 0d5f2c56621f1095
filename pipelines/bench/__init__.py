"""The tuner benchmark behind ``hyperpilot bench tuner``.

``tasks`` holds the LLAMBO / Bayesmark problems, ``methods`` the optimisers compared on them,
``llm`` the LLM-assisted ones, ``summary`` the regret and rank tables, and ``main`` the grid,
the runner and the command. Nothing is re-exported: importing the package stays cheap, and
``bench.main`` stays the module, not its ``main`` function.
"""
