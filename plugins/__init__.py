"""Built-in generator plugins (import root ``synthmarket_plugins``).

Each module registers its generators through the ``register_generators`` hook and is
declared under the entry-point group ``synthmarket`` in pyproject.toml, exactly as a
third-party plugin package would be.
"""
