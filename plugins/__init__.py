"""Built-in generator plugins (import root ``synthmarket_plugins``).

Each generator is declared by name under the entry-point group ``synthmarket.generators`` in
pyproject.toml, exactly as a third-party plugin package would declare it; its module is
imported only when that generator is used (the deep ones import torch).
"""
