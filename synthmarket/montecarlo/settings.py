"""Run settings: what a backtrader user sets on Cerebro, checked once and applied to every path.

:class:`Settings` holds the broker (cash, a commission scheme, slippage), the sizer,
cheat-on-open and cheat-on-close, resampled feeds, analyzers and a ``setup(cerebro)`` hook.
Sizers, analyzers and commission classes are named by *specs*: ``Name[:key=value,...]``,
where ``Name`` is a class of ``backtrader.sizers`` / ``backtrader.analyzers`` or a reference
``package.module:Class`` / ``path/to/file.py:Class``. Specs stay text, so that the settings
travel to worker processes (local or Ray) and into ``run.json`` as they are; each worker
resolves them once (:func:`_resolve_class` is cached).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import backtrader as bt

from ..errors import ConfigError, PluginError

#: ``--resample`` words -> backtrader timeframes.
RESAMPLE = {"weekly": bt.TimeFrame.Weeks, "monthly": bt.TimeFrame.Months}
#: The built-in commission schemes; a reference to a ``CommInfoBase`` subclass is the fifth.
COMMISSION_SCHEMES = ("percent", "per-share", "per-order", "futures")
#: What each kind of spec must subclass, and the backtrader module its bare names come from.
_KINDS = {
    "sizer": (bt.Sizer, bt.sizers),
    "analyzer": (bt.Analyzer, bt.analyzers),
    "commission scheme": (bt.CommInfoBase, None),
}


class PerOrder(bt.CommInfoBase):
    """A fixed amount per execution, whatever its size (``--commission-scheme per-order``).

    backtrader asks a commission scheme once per part of an execution, so an order that turns a
    long position short (a close and an open) pays twice, and one filled in parts pays each part."""

    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

    def _getcommission(self, size, price, pseudoexec):
        return self.p.commission if size else 0.0


@dataclass(frozen=True)
class Settings:
    """Everything a run sets on each path's Cerebro besides the data and the strategy.

    Attributes
    ----------
    cash : float
        Starting cash.
    commission : float, optional
        The commission: a fraction of the traded value for ``percent`` (default 0.001 = 0.1 %);
        an amount per share, per order or per contract for the other built-in schemes (default
        0). Not given with a scheme of your own: its parameters are in its spec.
    slippage : float
        Slippage as a fraction of the price (``broker.set_slippage_perc``).
    commission_scheme : str
        ``percent``, ``per-share``, ``per-order``, ``futures[:margin=M,mult=K]``, or a
        ``CommInfoBase`` subclass by reference with its parameters
        (``file.py:Class[:key=value,...]``; ``commission`` is then one of its parameters).
    slippage_fixed : float
        Slippage as an amount of price (``broker.set_slippage_fixed``).
    sizer : str, optional
        ``PercentSizer:percents=20`` (``cerebro.addsizer``).
    cheat_on_open, cheat_on_close : bool
        ``bt.Cerebro(cheat_on_open=True)`` and ``broker.set_coc(True)``.
    resample : tuple of str
        ``weekly`` / ``monthly``: each adds the path's bars resampled to that timeframe as the
        next feed (``data1``, ``data2``, ...), as ``cerebro.resampledata`` does.
    analyzers : tuple of str
        Analyzer specs (``SharpeRatio``, ``SQN``, ``file.py:Mine:key=value``).
    setup : str, optional
        ``file.py:function`` or ``package.module:function``: called as ``setup(cerebro)`` once
        the data, strategy and the settings above are added.
    """

    cash: float = 100_000.0
    commission: float | None = None
    slippage: float = 0.0
    commission_scheme: str = "percent"
    slippage_fixed: float = 0.0
    sizer: str | None = None
    cheat_on_open: bool = False
    cheat_on_close: bool = False
    resample: tuple[str, ...] = ()
    analyzers: tuple[str, ...] = ()
    setup: str | None = None

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        set_("resample", tuple(str(r).strip().lower() for r in _as_tuple(self.resample)))
        set_("analyzers", tuple(_absolute_spec(a) for a in _as_tuple(self.analyzers)))
        for name in ("sizer", "setup"):
            value = getattr(self, name)
            set_(name, None if value in (None, "") else _absolute_spec(value))
        set_("commission_scheme", _absolute_spec(self.commission_scheme or "percent"))
        if self.scheme_name not in COMMISSION_SCHEMES:
            if self.commission is not None:
                raise ConfigError(
                    f"The commission scheme {self.scheme_name!r} is your own class: give its commission as one of "
                    f"its parameters ({self.scheme_name}:commission=...), not with --commission."
                )
            set_("commission", 0.0)
        elif self.commission is None:
            set_("commission", 0.001 if self.scheme_name == "percent" else 0.0)
        set_("commission", float(self.commission))
        if not (math.isfinite(self.cash) and self.cash > 0):
            raise ConfigError(f"cash must be a positive amount; got {self.cash}.")
        if self.scheme_name == "percent" and not (0 <= self.commission < 1):
            raise ConfigError(f"commission is a fraction of the traded value in [0, 1); got {self.commission}.")
        if not (math.isfinite(self.commission) and self.commission >= 0):
            raise ConfigError(f"commission must be an amount of 0 or more; got {self.commission}.")
        if not (0 <= self.slippage < 1):
            raise ConfigError(f"slippage is a fraction of the price in [0, 1); got {self.slippage}.")
        if not (math.isfinite(self.slippage_fixed) and self.slippage_fixed >= 0):
            raise ConfigError(f"slippage_fixed is an amount of price, 0 or more; got {self.slippage_fixed}.")
        if self.slippage and self.slippage_fixed:
            raise ConfigError("Give slippage as a fraction (--slippage) or as an amount (--slippage-fixed), not both.")
        unknown = [r for r in self.resample if r not in RESAMPLE]
        if unknown:
            raise ConfigError(f"Cannot resample to {', '.join(map(repr, unknown))}; use {' or '.join(RESAMPLE)}.")

    @property
    def scheme_name(self) -> str:
        """The commission scheme without its parameters (``futures``, or the class reference)."""
        return split_spec(self.commission_scheme)[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``run.json`` and ``summary.json``."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def feeds(self) -> tuple[str, ...]:
        """What each feed of a path is: ``data0`` the path's bars, then the resampled ones."""
        return ("the path's bars", *(f"its {r} bars" for r in self.resample))

    def feed_lengths(self, dates) -> list[int]:
        """Bars of each feed of a path with these ``dates`` (a ``DatetimeIndex``)."""
        periods = {"weekly": "W", "monthly": "M"}
        return [len(dates), *(dates.to_period(periods[r]).nunique() for r in self.resample)]

    def check(self) -> None:
        """Resolve every class and function the settings name, and check their parameters,
        so that a mistake is one message before the run rather than one per path."""
        for kind, spec in self._specs():
            _resolved_kwargs(kind, spec)
        if self.setup is not None:
            _setup_function(self.setup)

    def _specs(self) -> list[tuple[str, str]]:
        specs = [("analyzer", a) for a in self.analyzers]
        if self.sizer is not None:
            specs.append(("sizer", self.sizer))
        specs.append(("commission scheme", self.commission_scheme))
        return specs

    def user_files(self) -> list[str]:
        """The user's own files these settings name (their code's errors are reported there)."""
        specs = [spec for _, spec in self._specs()] + ([self.setup] if self.setup else [])
        return [target for target in (split_spec(s)[0].rpartition(":")[0] for s in specs) if target.endswith(".py")]

    # -- applied in each worker, once per path --------------------------------------------------
    def new_cerebro(self) -> bt.Cerebro:
        """An empty Cerebro: no default observers, cheat-on-open as set."""
        return bt.Cerebro(stdstats=False, cheat_on_open=self.cheat_on_open)

    def add_feeds(self, cerebro: bt.Cerebro, data) -> None:
        """The path's bars as ``data0``, then each resampled feed."""
        cerebro.adddata(data)
        for word in self.resample:
            cerebro.resampledata(data, timeframe=RESAMPLE[word], name=f"{data._name}-{word}")

    def apply(self, cerebro: bt.Cerebro) -> dict[str, str]:
        """Broker, sizer and analyzers on ``cerebro``; the analyzers' names (``sqn``, ...) by spec."""
        broker = cerebro.broker
        broker.setcash(self.cash)
        name, kwargs = _resolved_kwargs("commission scheme", self.commission_scheme)
        if name == "percent":
            broker.setcommission(commission=self.commission)
        elif name == "per-share":
            broker.setcommission(commission=self.commission, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True)
        elif name == "per-order":
            broker.addcommissioninfo(PerOrder(commission=self.commission))
        elif name == "futures":
            broker.setcommission(commission=self.commission, **kwargs)
        else:
            broker.addcommissioninfo(_resolve_class("commission scheme", self.commission_scheme)(**kwargs))
        if self.slippage:
            broker.set_slippage_perc(self.slippage)
        if self.slippage_fixed:
            broker.set_slippage_fixed(self.slippage_fixed)
        if self.cheat_on_close:
            broker.set_coc(True)
        if self.sizer is not None:
            cerebro.addsizer(_resolve_class("sizer", self.sizer), **_resolved_kwargs("sizer", self.sizer)[1])
        names: dict[str, str] = {}
        for spec in self.analyzers:
            cls = _resolve_class("analyzer", spec)
            name = cls.__name__.lower()
            while name in names.values():
                name += "_"
            names[spec] = name
            cerebro.addanalyzer(cls, _name=name, **_resolved_kwargs("analyzer", spec)[1])
        return names

    def run_setup(self, cerebro: bt.Cerebro) -> None:
        if self.setup is not None:
            _setup_function(self.setup)(cerebro)


# -- specs: "Name[:key=value,...]" ---------------------------------------------------------------
def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"PercentSizer:percents=20"`` -> ``("PercentSizer", {"percents": "20"})``; also
    ``"file.py:Class:key=value,key2=value"`` and plain ``"package.module:Class"``. A value may
    hold commas inside brackets (``weights=(1,2)``)."""
    head, sep, tail = spec.rpartition(":")
    if not sep or "=" not in tail:
        return spec.strip(), {}
    items: list[str] = []
    depth = 0
    for char in tail:
        if char == "," and depth == 0:
            items.append("")
            continue
        depth += (char in "([{") - (char in ")]}")
        if not items:
            items.append("")
        items[-1] += char
    kwargs = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{spec!r}: {item!r} is not key=value (write Name:key=value,key2=value).")
        kwargs[key.strip()] = value.strip()
    return head.strip(), kwargs


def _absolute_spec(spec: Any) -> str:
    """The spec with a file reference made absolute (workers elsewhere find it too); a class or
    function given by an API caller becomes its ``module:qualname`` reference."""
    if not isinstance(spec, str):
        module, qualname = getattr(spec, "__module__", None), getattr(spec, "__qualname__", None)
        if not module or not qualname or module.startswith("synthmarket_user_") or "<" in qualname:
            raise ConfigError(
                f"{spec!r} cannot be found by name in a worker; save it in a file and name it file.py:Name."
            )
        return f"{module}:{qualname}"
    name, kwargs = split_spec(spec)
    target, sep, attr = name.rpartition(":")
    if sep and target.endswith(".py"):
        name = f"{Path(target).expanduser().resolve()}:{attr}"
    return name + (":" + ",".join(f"{k}={v}" for k, v in kwargs.items()) if kwargs else "")


@functools.lru_cache(maxsize=64)
def _resolve_class(kind: str, spec: str) -> type:
    from ..references import load_object

    name = split_spec(spec)[0]
    base, module = _KINDS[kind]
    if ":" in name:
        try:
            cls = load_object(name)
        except PluginError as exc:
            raise ConfigError(f"The {kind} {name!r} cannot be loaded: {exc}") from None
    else:
        short = name.removeprefix("bt.").removeprefix("backtrader.").rpartition(".")[2]
        cls = getattr(module, short, None) if module is not None else None
        if cls is None:
            known = (
                sorted(k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, base))
                if module
                else []
            )
            raise ConfigError(
                f"No {kind} named {name!r}."
                + (f" backtrader's: {', '.join(known)}." if known else "")
                + " Or name your own class as path/to/file.py:Class or package.module:Class."
            )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"The {kind} {name!r} is {cls!r}, not a subclass of backtrader.{base.__name__}.")
    return cls


@functools.lru_cache(maxsize=64)
def _resolved_kwargs(kind: str, spec: str) -> tuple[str, dict[str, Any]]:
    """The spec's name and its parameters, converted to the types of the class's defaults."""
    from .strategy import coerce_params

    name, raw = split_spec(spec)
    if kind == "commission scheme" and name in COMMISSION_SCHEMES:
        if name != "futures":
            if raw:
                raise ConfigError(f"The {name} commission scheme takes no parameters; got {', '.join(raw)}.")
            return name, {}
        allowed = {"margin": 0.0, "mult": 1.0}
        unknown = sorted(set(raw) - set(allowed))
        if unknown or "margin" not in raw:
            raise ConfigError(
                f"The futures commission scheme takes margin (required) and mult: e.g. futures:margin=2000,mult=10; "
                f"got {spec!r}."
            )
        values = {}
        for key, default in allowed.items():
            try:
                values[key] = float(raw.get(key, default))
            except ValueError:
                raise ConfigError(f"futures {key} must be a number; got {raw[key]!r}.") from None
        return name, values
    from .strategy import resolve_params

    cls = _resolve_class(kind, spec)
    return name, resolve_params(cls, coerce_params(cls, raw, label=f"{kind} {name}"))


@functools.lru_cache(maxsize=16)
def _setup_function(ref: str):
    from ..references import load_object

    if ":" not in ref:
        raise ConfigError(
            f"setup must name a function as path/to/file.py:function or package.module:function; got {ref!r}."
        )
    try:
        function = load_object(ref)
    except PluginError as exc:
        raise ConfigError(f"The setup function {ref!r} cannot be loaded: {exc}") from None
    if not callable(function):
        raise ConfigError(f"setup {ref!r} is {function!r}, not a function taking the Cerebro.")
    return function


def _as_tuple(value) -> tuple:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
