"""The plugin contract: the hooks a synthmarket plugin may implement.

Most plugins need no hook: a package declares each class by name under the entry-point
group of its kind, and synthmarket imports the module only when that name is used::

    [project.entry-points."synthmarket.generators"]
    my_generator = "my_package.generators:MyGenerator"

(groups ``synthmarket.generators``, ``synthmarket.strategies``, ``synthmarket.facts``; see
:data:`synthmarket.registry.DECLARED_GROUPS` and docs/plugins.md).

The hooks are for a plugin that decides at run time what it contributes. Such a plugin is a
module (or object) with functions decorated by :data:`hookimpl`. Each hook receives a
``register`` callback; call it once per thing the plugin contributes::

    from synthmarket import hookimpl

    @hookimpl
    def register_generators(register):
        register(MyGenerator)

Expose the module through the entry-point group ``synthmarket`` in your package's
``pyproject.toml``; it is imported whenever the registry is built::

    [project.entry-points.synthmarket]
    my_plugin = "my_package.plugin"
"""

from __future__ import annotations

import pluggy

PROJECT = "synthmarket"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_generators(register):
    """Contribute generator classes.

    Call ``register(cls)`` for each :class:`synthmarket.generator.Generator` subclass.
    The class's ``name`` attribute is the name users type (``--generator NAME``;
    ``register(cls, name="other")`` overrides it); the first line of its docstring is the
    description ``synthmarket plugins`` shows.
    """


@hookspec
def register_strategies(register):
    """Contribute backtrader strategies.

    Call ``register(cls)`` or ``register(cls, name="my_name")`` for each
    ``backtrader.Strategy`` subclass. Without a name, the class's ``name`` attribute is
    used, else its class name in snake_case. Parameters are the class's ``params``.
    """


@hookspec
def register_facts(register):
    """Contribute stylized facts.

    Call ``register(cls)`` for each :class:`synthmarket.facts.StylizedFact` subclass;
    its ``name`` attribute is its key in the scorecard, the first line of its docstring
    its description.
    """
