"""Strategies, sizers, analyzers, commission schemes and a set-up function written the way
backtrader's documentation and samples write them: nothing here knows about synthmarket.

tests/test_backtrader_compat.py runs each of them in a plain ``cerebro.run()`` and through
synthmarket (API and command line) on the same bars, and asks for the same final value and
the same closed trades.
"""

import datetime

import backtrader as bt


# -- order types ---------------------------------------------------------------------------------
class SmaCross(bt.Strategy):
    """Market orders: buy when the fast SMA crosses over the slow one, close when it crosses
    back. Logs as backtrader's quickstart does (the ending value always)."""

    params = (("fast", 10), ("slow", 30), ("stake", 10), ("printlog", False))

    def log(self, txt, dt=None, doprint=False):
        if self.params.printlog or doprint:
            dt = dt or self.datas[0].datetime.date(0)
            print(f"{dt.isoformat()}, {txt}")

    def __init__(self):
        sma1 = bt.ind.SMA(period=self.p.fast)
        sma2 = bt.ind.SMA(period=self.p.slow)
        self.crossover = bt.ind.CrossOver(sma1, sma2)

    def notify_order(self, order):
        if order.status == order.Completed:
            side = "BUY" if order.isbuy() else "SELL"
            self.log(f"{side} EXECUTED, Price: {order.executed.price:.2f}, Size: {order.executed.size:.2f}")

    def next(self):
        if not self.position:
            if self.crossover > 0:
                self.buy(size=self.p.stake)
        elif self.crossover < 0:
            self.close()

    def stop(self):
        self.log(f"(SMA {self.p.fast}/{self.p.slow}) Ending Value {self.broker.getvalue():.2f}", doprint=True)


class LimitEntry(bt.Strategy):
    """Limit orders: bid a little under the close in an uptrend (valid a few days), take profit
    with a limit sell."""

    params = dict(period=20, discount=0.005, valid=4, profit=0.02, stake=20)

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=self.p.period)
        self.order = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        self.order = None  # completed, expired, canceled or rejected

    def next(self):
        if self.order:
            return
        valid = self.data.datetime.date(0) + datetime.timedelta(days=self.p.valid)
        if not self.position:
            if self.data.close[0] > self.sma[0]:
                price = self.data.close[0] * (1.0 - self.p.discount)
                self.order = self.buy(exectype=bt.Order.Limit, price=price, valid=valid, size=self.p.stake)
        else:
            price = self.position.price * (1.0 + self.p.profit)
            self.order = self.sell(exectype=bt.Order.Limit, price=price, valid=valid, size=self.position.size)


class Breakout(bt.Strategy):
    """Stop orders: a buy stop over the highest high, a sell stop under the lowest low; both
    cancelled and placed again every bar."""

    params = (("entry", 20), ("exit", 10), ("stake", 15))

    def __init__(self):
        self.highest = bt.ind.Highest(self.data.high, period=self.p.entry)
        self.lowest = bt.ind.Lowest(self.data.low, period=self.p.exit)
        self.order = None

    def notify_order(self, order):
        if not order.alive() and order is self.order:
            self.order = None

    def next(self):
        if self.order:
            self.cancel(self.order)
        if not self.position:
            self.order = self.buy(exectype=bt.Order.Stop, price=self.highest[0], size=self.p.stake)
        else:
            self.order = self.sell(exectype=bt.Order.Stop, price=self.lowest[0], size=self.position.size)


class StopLimitEntry(bt.Strategy):
    """Stop-limit orders with an expiry: buy a breakout over the recent high, but pay at most
    ``plimit`` more; the order lives ``valid`` days. Exit after ``hold`` bars."""

    params = dict(lookback=10, plimit=0.003, valid=3, hold=10, stake=15)

    def __init__(self):
        self.highest = bt.ind.Highest(self.data.high, period=self.p.lookback)
        self.order = None
        self.entered = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed and order.isbuy():
            self.entered = len(self)
        self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            stop = self.highest[0]
            self.order = self.buy(
                exectype=bt.Order.StopLimit,
                price=stop,
                plimit=stop * (1.0 + self.p.plimit),
                valid=datetime.timedelta(days=self.p.valid),
                size=self.p.stake,
            )
        elif len(self) - self.entered >= self.p.hold:
            self.order = self.close()


class TrailingStop(bt.Strategy):
    """StopTrail: buy above the SMA, then follow the price with a trailing stop (by percent or
    by amount)."""

    params = dict(period=30, trailpercent=0.0, trailamount=0.0, stake=20)

    def __init__(self):
        self.sma = bt.ind.SMA(period=self.p.period)
        self.order = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.data.close[0] > self.sma[0]:
                self.order = self.buy(size=self.p.stake)
        elif self.p.trailamount:
            self.order = self.sell(exectype=bt.Order.StopTrail, trailamount=self.p.trailamount)
        else:
            self.order = self.sell(exectype=bt.Order.StopTrail, trailpercent=self.p.trailpercent)


class StopLoss(bt.Strategy):
    """A protective order placed when the entry fills: a fixed stop ``stop_loss`` under the fill
    price, or, when ``trail`` is a number, a trailing stop ``trail`` (a fraction) behind it."""

    params = dict(fast=10, slow=30, stop_loss=0.02, trail=False, stake=20)

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))

    def notify_order(self, order):
        if order.status != order.Completed or not order.isbuy():
            return
        if not self.p.trail:
            stop = order.executed.price * (1.0 - self.p.stop_loss)
            self.sell(exectype=bt.Order.Stop, price=stop, size=order.executed.size)
        else:
            self.sell(exectype=bt.Order.StopTrail, trailpercent=self.p.trail, size=order.executed.size)

    def next(self):
        if not self.position and self.cross > 0:
            self.buy(size=self.p.stake)


class ManualBracket(bt.Strategy):
    """A bracket built by hand: a limit entry, a protective stop and a take-profit limit
    (``transmit=False`` until the last child), entered on a fast/slow SMA cross."""

    params = dict(fast=5, slow=15, limit=0.005, stop=0.03, target=0.03, valid=3, stake=20)

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))
        self.orefs = []

    def notify_order(self, order):
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs or self.position:
            return
        if self.cross > 0:
            p1 = self.data.close[0] * (1.0 - self.p.limit)
            p2 = p1 * (1.0 - self.p.stop)
            p3 = p1 * (1.0 + self.p.target)
            valid = datetime.timedelta(days=self.p.valid)
            o1 = self.buy(exectype=bt.Order.Limit, price=p1, valid=valid, size=self.p.stake, transmit=False)
            o2 = self.sell(exectype=bt.Order.Stop, price=p2, size=o1.size, parent=o1, transmit=False)
            o3 = self.sell(exectype=bt.Order.Limit, price=p3, size=o1.size, parent=o1, transmit=True)
            self.orefs = [o.ref for o in (o1, o2, o3)]


class BracketStrategy(bt.Strategy):
    """``buy_bracket``: a market entry with a stop-loss and a take-profit around it."""

    params = dict(period=10, stop=0.02, target=0.04, stake=20)

    def __init__(self):
        self.roc = bt.ind.RateOfChange(period=self.p.period)
        self.orefs = []

    def notify_order(self, order):
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs or self.position:
            return
        if self.roc[0] > 0:
            close = self.data.close[0]
            orders = self.buy_bracket(
                exectype=bt.Order.Market,
                size=self.p.stake,
                stopprice=close * (1.0 - self.p.stop),
                limitprice=close * (1.0 + self.p.target),
            )
            self.orefs = [o.ref for o in orders]


class OcoEntry(bt.Strategy):
    """One-cancels-other: a limit buy under the close and a stop buy over the high, in one OCO
    group; whichever fills cancels the other. Exit after ``hold`` bars."""

    params = dict(dip=0.01, breakout=0.005, valid=5, hold=5, stake=20)

    def __init__(self):
        self.orefs = []
        self.entered = None

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy():
            self.entered = len(self)
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs:
            return
        if self.position:
            if len(self) - self.entered >= self.p.hold:
                self.orefs = [self.close().ref]
            return
        valid = datetime.timedelta(days=self.p.valid)
        o1 = self.buy(
            exectype=bt.Order.Limit, price=self.data.close[0] * (1 - self.p.dip), valid=valid, size=self.p.stake
        )
        o2 = self.buy(
            exectype=bt.Order.Stop,
            price=self.data.high[0] * (1 + self.p.breakout),
            valid=valid,
            size=self.p.stake,
            oco=o1,
        )
        self.orefs = [o1.ref, o2.ref]


class OrderTargets(bt.Strategy):
    """``order_target_percent`` / ``_size`` / ``_value``: every ``every`` bars, long over the SMA
    and short (or flat) under it."""

    params = (("use", "percent"), ("period", 20), ("every", 5), ("percent", 0.5), ("size", 30), ("value", 50000.0))

    def __init__(self):
        self.sma = bt.ind.SMA(period=self.p.period)

    def next(self):
        if len(self) % self.p.every:
            return
        up = self.data.close[0] > self.sma[0]
        if self.p.use == "percent":
            self.order_target_percent(target=self.p.percent if up else -self.p.percent / 2)
        elif self.p.use == "size":
            self.order_target_size(target=self.p.size if up else -self.p.size)
        else:
            self.order_target_value(target=self.p.value if up else 0.0)


# -- sizers ----------------------------------------------------------------------------------------
class MacdAtr(bt.Strategy):
    """MACD crossing its signal while the SMA points down; an ATR stop that only moves up
    (the Van K. Tharp example of backtrader's macd-settings sample). Sized by the sizer."""

    params = (
        ("macd1", 12),
        ("macd2", 26),
        ("macdsig", 9),
        ("atrperiod", 14),
        ("atrdist", 3.0),
        ("smaperiod", 30),
        ("dirperiod", 10),
    )

    def __init__(self):
        self.macd = bt.indicators.MACD(
            self.data, period_me1=self.p.macd1, period_me2=self.p.macd2, period_signal=self.p.macdsig
        )
        self.mcross = bt.indicators.CrossOver(self.macd.macd, self.macd.signal)
        self.atr = bt.indicators.ATR(self.data, period=self.p.atrperiod)
        self.sma = bt.indicators.SMA(self.data, period=self.p.smaperiod)
        self.smadir = self.sma - self.sma(-self.p.dirperiod)

    def start(self):
        self.order = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.mcross[0] > 0.0 and self.smadir < 0.0:
                self.order = self.buy()
                self.pstop = self.data.close[0] - self.atr[0] * self.p.atrdist
        else:
            pclose = self.data.close[0]
            if pclose < self.pstop:
                self.close()
            else:
                self.pstop = max(self.pstop, pclose - self.atr[0] * self.p.atrdist)


class FixedPerc(bt.Sizer):
    """A fixed share of the cash for every operation."""

    params = (("perc", 0.20),)

    def _getsizing(self, comminfo, cash, data, isbuy):
        return comminfo.getsize(data.close[0], self.p.perc * cash)


# -- timers and cheating ---------------------------------------------------------------------------
class MonthlyRebalance(bt.Strategy):
    """A timer at the session start of a day of the month (carried to the next trading day):
    invested while the close is over its SMA, flat otherwise. ``cheat=True`` makes it a cheat
    timer, called before the broker runs the bar."""

    params = dict(monthday=1, period=50, target=0.9, cheat=False)

    def __init__(self):
        self.sma = bt.ind.SMA(period=self.p.period)
        self.add_timer(
            when=bt.timer.SESSION_START,
            monthdays=[self.p.monthday],
            monthcarry=True,
            cheat=self.p.cheat,
        )

    def notify_timer(self, timer, when, *args, **kwargs):
        if len(self.data) < self.p.period:
            return  # the timer also fires before the SMA has a value
        if self.data.close[0] > self.sma[0]:
            self.order_target_percent(target=self.p.target)
        else:
            self.order_target_percent(target=0.0)


class CheatOnOpen(bt.Strategy):
    """backtrader's cheat-on-open sample: a moving-average cross, acting in ``next_open`` when the
    Cerebro cheats on the open (the order fills at the open it was sized with), in ``next``
    otherwise (sized with the close, filled at the next open)."""

    params = dict(periods=[10, 30], matype=bt.ind.SMA, allin=0.999)

    def __init__(self):
        self.cheating = self.cerebro.p.cheat_on_open
        mas = [self.p.matype(period=x) for x in self.p.periods]
        self.signal = bt.ind.CrossOver(*mas)
        self.order = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None

    def operate(self, fromopen):
        if self.order is not None:
            return
        if self.position:
            if self.signal < 0:
                self.order = self.close()
        elif self.signal > 0:
            price = self.data.open[0] if fromopen else self.data.close[0]
            self.order = self.buy(size=int(self.broker.getcash() * self.p.allin / price))

    def next(self):
        if self.cheating:
            return
        self.operate(fromopen=False)

    def next_open(self):
        if not self.cheating:
            return
        self.operate(fromopen=True)


class CloseCheat(bt.Strategy):
    """Trades at the close of the bar that gave the signal: meant for a broker with
    cheat-on-close (``set_coc(True)``); without it, the 95 % target is sometimes refused."""

    params = dict(period=20, target=0.95)

    def __init__(self):
        self.cross = bt.ind.CrossOver(self.data.close, bt.ind.SMA(period=self.p.period))

    def next(self):
        if self.cross > 0:
            self.order_target_percent(target=self.p.target)
        elif self.cross < 0:
            self.order_target_percent(target=0.0)


# -- signals ---------------------------------------------------------------------------------------
class LongShortCross(bt.SignalStrategy):
    """A SignalStrategy: long while the fast SMA is over the slow one, short while under."""

    params = dict(fast=10, slow=30)

    def __init__(self):
        sma1, sma2 = bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow)
        self.signal_add(bt.SIGNAL_LONGSHORT, bt.ind.CrossOver(sma1, sma2))


class CloseOverSma(bt.Indicator):
    """Close minus its SMA: a long signal while positive."""

    lines = ("signal",)
    params = (("period", 20),)

    def __init__(self):
        self.lines.signal = self.data - bt.ind.SMA(period=self.p.period)


class LongWithExit(bt.SignalStrategy):
    """A SignalStrategy with an indicator class as its signal: long over the SMA, exit when a
    faster SMA turns down."""

    params = dict(period=20, exit_period=5)

    def __init__(self):
        self.signal_add(bt.SIGNAL_LONG, CloseOverSma(period=self.p.period))
        fast = bt.ind.SMA(period=self.p.exit_period)
        self.signal_add(bt.SIGNAL_LONGEXIT, fast - fast(-1))


# -- several timeframes ----------------------------------------------------------------------------
class MonthlyPivot(bt.Strategy):
    """Mixing timeframes: the pivot points of the monthly bars (``data1``, resampled from the
    daily ``data0``), coupled to the daily clock. Long over the pivot, out under S1."""

    params = dict(stake=20)

    def __init__(self):
        pp = bt.ind.PivotPoint(self.data1)
        pp.plotinfo.plot = False
        pp1 = pp()  # couple the entire indicator to the daily data
        self.buysignal = bt.ind.CrossOver(self.data0.close, pp1.lines.p)
        self.sellsignal = self.data0.close < pp1.s1

    def next(self):
        if not self.position:
            if self.buysignal > 0:
                self.buy(size=self.p.stake)
        elif self.sellsignal:
            self.close()


class WeeklyMonthly(bt.Strategy):
    """Three timeframes: a monthly trend (``data2``) and a weekly RSI (``data1``) decide the
    daily entries and exits."""

    params = dict(months=3, rsi=6, oversold=45.0, overbought=60.0, stake=20)

    def __init__(self):
        self.monthly_sma = bt.ind.SMA(self.data2.close, period=self.p.months)
        self.weekly_rsi = bt.ind.RSI(self.data1.close, period=self.p.rsi)

    def next(self):
        uptrend = self.data2.close[0] > self.monthly_sma[0]
        if not self.position:
            if uptrend and self.weekly_rsi[0] < self.p.overbought:
                self.buy(size=self.p.stake)
        elif not uptrend or self.weekly_rsi[0] > self.p.overbought:
            self.close()


# -- analyzers and commissions ---------------------------------------------------------------------
class WinLoss(bt.Analyzer):
    """Closed trades won and lost by more than ``min_pnl``, and the best and worst net profit."""

    params = (("min_pnl", 0.0),)

    def start(self):
        self.rets.won = 0
        self.rets.lost = 0
        self.rets.best = 0.0
        self.rets.worst = 0.0

    def notify_trade(self, trade):
        if not trade.isclosed:
            return
        pnl = trade.pnlcomm
        if pnl > self.p.min_pnl:
            self.rets.won += 1
        elif pnl < -self.p.min_pnl:
            self.rets.lost += 1
        self.rets.best = max(self.rets.best, pnl)
        self.rets.worst = min(self.rets.worst, pnl)


class FixedPlusPercent(bt.CommInfoBase):
    """Stocks: a fixed fee per execution plus a percentage of the traded value."""

    params = (
        ("stocklike", True),
        ("commtype", bt.CommInfoBase.COMM_PERC),
        ("percabs", True),
        ("commission", 0.0005),
        ("fixed", 1.0),
    )

    def _getcommission(self, size, price, pseudoexec):
        return self.p.fixed + abs(size) * price * self.p.commission


def thin_market(cerebro):
    """A set-up function: orders fill at most 25 shares a bar, as in a thin market."""
    cerebro.broker.set_filler(bt.broker.fillers.FixedSize(size=25))


def broker_observer(cerebro):
    """A set-up function: the Broker observer that ``stdstats=True`` would add (AnnualReturn
    reads its values)."""
    cerebro.addobserver(bt.observers.Broker)
