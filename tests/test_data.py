"""data.py: loading CSV / Parquet / DataFrames, validation messages, missing values, samples.

Every bad input a new user is likely to try is checked twice: the library raises a
DataError with a one-paragraph message saying what is wrong and what to do, and
``synthmarket data info --data PATH`` prints that message and exits with status 2, without
a traceback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.data import fingerprint, load_data, load_ohlcv, sample_data, select_dates
from synthmarket.data_summary import summarize
from synthmarket.errors import DataError

HEADER = "Date,Open,High,Low,Close,Volume"
GOOD_ROWS = [
    "2020-01-02,10,11,9,10.5,100",
    "2020-01-03,10.5,11,10,10.8,120",
    "2020-01-06,10.8,11.2,10.1,11,90",
]


def csv(tmp_path, text: str, name: str = "bars.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def lines(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def assert_user_error(spec, *phrases: str) -> None:
    """Library: a one-paragraph DataError with ``phrases``; CLI: the same message and exit 2."""
    with pytest.raises(DataError) as info:
        load_data(str(spec))
    message = str(info.value)
    assert "\n" not in message, message
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    result = CliRunner().invoke(app, ["data", "info", "--data", str(spec)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert message in result.output


# -- the bad inputs a new user would try ---------------------------------------------------


def test_missing_column(tmp_path):
    path = csv(
        tmp_path,
        lines("2020-01-02,10,11,10.5,100", "2020-01-03,10.5,11,10.8,120", header="Date,Open,High,Close,Volume"),
    )
    assert_user_error(
        path,
        "lacks column(s) Low",
        "found: Date, Open, High, Close, Volume",
        "Expected a header row like Date,Open,High,Low,Close",
    )


def test_text_in_a_price(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "2020-01-03,10.5,11,10,n/a?,120", GOOD_ROWS[2]))
    assert_user_error(
        path, "column 'Close' holds text that is not a number ('n/a?')", "at 2020-01-03 (line 3)", "Fix those values"
    )


def test_high_below_low(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "2020-01-03,10.5,9,11,10.8,120", GOOD_ROWS[2]))
    assert_user_error(path, "high is below low at 2020-01-03", "fix those rows")


def test_high_below_close(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "2020-01-03,10.5,10.6,10,10.8,120", GOOD_ROWS[2]))
    assert_user_error(path, "high is below open or close at 2020-01-03")


def test_low_above_open(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "2020-01-03,10.5,11,10.6,10.8,120", GOOD_ROWS[2]))
    assert_user_error(path, "low is above open or close at 2020-01-03")


def test_unsorted_dates(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[1], GOOD_ROWS[0], GOOD_ROWS[2]))
    assert_user_error(
        path, "dates are not in increasing order: 2020-01-02 (line 3) comes after a later date", "Sort the file by date"
    )


def test_duplicated_dates(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[1], GOOD_ROWS[2]))
    assert_user_error(path, "duplicated dates 2020-01-03 (at lines 3, 4)", "Keep one bar per date")


def test_empty_file(tmp_path):
    assert_user_error(csv(tmp_path, ""), "is empty", "header row")


def test_blank_lines_only(tmp_path):
    assert_user_error(csv(tmp_path, "\n\n\n"), "holds no data")


def test_header_only(tmp_path):
    assert_user_error(csv(tmp_path, HEADER + "\n"), "has a header but no rows of data")


def test_unknown_data_name():
    assert_user_error("sp5000", "Unknown data set 'sp5000'", "Did you mean 'sp500'?", "Bundled sets: sp500, nasdaq")


def test_path_that_does_not_exist(tmp_path):
    assert_user_error(tmp_path / "prices.csv", "No such file", "prices.csv", "Bundled sets")


def test_directory_instead_of_a_file(tmp_path):
    assert_user_error(tmp_path, "is a directory, not a data file")


def test_non_positive_price(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "2020-01-03,0,11,0,10.8,120", GOOD_ROWS[2]))
    assert_user_error(path, "prices must be positive and finite; not so at 2020-01-03")


def test_negative_volume(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "2020-01-03,10.5,11,10,10.8,-5", GOOD_ROWS[2]))
    assert_user_error(path, "volume must be finite and non-negative; not so at 2020-01-03")


def test_unreadable_date(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "03/45/2020,10.5,11,10,10.8,120", GOOD_ROWS[2]))
    assert_user_error(path, "could not read the date '03/45/2020' at line 3", "YYYY-MM-DD")


def test_no_date_column(tmp_path):
    path = csv(tmp_path, lines("10,11,9,10.5", "10.5,11,10,10.8", header="Open,High,Low,Close"))
    assert_user_error(path, "has no date column", "Name the column of dates 'Date'")


def test_row_numbers_column_is_not_taken_for_dates(tmp_path, sp500):
    path = tmp_path / "numbered.csv"
    sp500.iloc[:5].reset_index(drop=True).to_csv(path)  # an unnamed 0..4 column, no dates
    assert_user_error(path, "has no date column")


def test_a_single_bar(tmp_path):
    assert_user_error(csv(tmp_path, lines(GOOD_ROWS[0])), "holds 1 bar(s)", "at least 2")


def test_spreadsheet_file(tmp_path):
    path = tmp_path / "prices.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    assert_user_error(path, ".xlsx files are not read", "CSV or Parquet")


def test_missing_values_by_default(tmp_path):
    path = csv(tmp_path, lines(GOOD_ROWS[0], "2020-01-03,10.5,,10,10.8,120", GOOD_ROWS[2]))
    assert_user_error(path, "1 row(s) miss a value (in 'High'), at 2020-01-03", "--missing drop|ffill")


# -- missing values: each policy -----------------------------------------------------------

YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume"
HOLED = lines(
    "2020-01-02,10,11,9,10.5,10.5,100",
    "2020-01-03,null,null,null,null,null,null",  # how Yahoo writes a day without data
    "2020-01-06,10.5,11.5,10,11,11,120",
    "2020-01-07,11,,10.8,11.1,11.1,130",
    "2020-01-08,11.1,11.3,11,11.2,11.2,140",
    header=YAHOO,
)


def test_missing_policy_error_names_every_holed_row(tmp_path):
    with pytest.raises(DataError, match=r"2 row\(s\) miss a value .* at 2020-01-03, 2020-01-07"):
        load_ohlcv(csv(tmp_path, HOLED))


def test_missing_policy_drop(tmp_path):
    bars = load_ohlcv(csv(tmp_path, HOLED), missing="drop")
    assert list(bars.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-06", "2020-01-08"]
    assert bars.loc["2020-01-06", "close"] == 11.0


def test_missing_policy_ffill_keeps_filled_bars_consistent(tmp_path):
    bars = load_ohlcv(csv(tmp_path, HOLED), missing="ffill")
    assert len(bars) == 5
    flat = bars.loc["2020-01-03"]  # nothing known: a flat bar at the last close, last volume
    assert (flat[["open", "high", "low", "close"]] == 10.5).all() and flat["volume"] == 100
    assert bars.loc["2020-01-07", "high"] == 11.1  # max(open, close) of that bar
    assert bars.loc["2020-01-07", "low"] == 10.8


def test_missing_policy_ffill_cannot_fill_the_first_row(tmp_path):
    path = csv(tmp_path, lines("2020-01-02,10,11,9,,100", *GOOD_ROWS[1:]))
    with pytest.raises(DataError, match="nothing before them to carry forward, at 2020-01-02.*missing='drop'"):
        load_ohlcv(path, missing="ffill")
    assert len(load_ohlcv(path, missing="drop")) == 2


def test_unknown_missing_policy():
    with pytest.raises(DataError, match="Unknown missing-value policy 'zero'; use one of error, drop, ffill"):
        load_data("sp500", missing="zero")


def test_missing_policies_through_the_cli(tmp_path):
    path = csv(tmp_path, HOLED)
    runner = CliRunner()
    assert runner.invoke(app, ["data", "info", "--data", str(path)]).exit_code == 2
    dropped = runner.invoke(app, ["data", "info", "--data", str(path), "--missing", "drop"])
    assert dropped.exit_code == 0 and "│ 3 " in dropped.output
    filled = runner.invoke(app, ["data", "info", "--data", str(path), "--missing", "ffill"])
    assert filled.exit_code == 0 and "│ 5 " in filled.output


# -- formats and headers -------------------------------------------------------------------


def test_adj_close_adjusts_all_prices(tmp_path):
    # a 2:1 split between the first and second bar: raw closes halve, adjusted closes do not
    text = lines(
        "2020-01-02,100,104,98,102,51,1000",
        "2020-01-03,51.5,52,50.5,51.8,51.8,2000",
        "2020-01-06,51.8,52.4,51,52,52,1800",
        header=YAHOO,
    )
    path = csv(tmp_path, text)
    bars = load_ohlcv(path)
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    np.testing.assert_allclose(bars.iloc[0][["open", "high", "low", "close"]], [50, 52, 49, 51])
    np.testing.assert_allclose(bars["volume"], [1000, 2000, 1800])
    assert abs(np.log(bars["close"]).diff().iloc[1]) < 0.02  # the split is not a -69% return
    raw = load_ohlcv(path, adjust=False)
    assert raw["close"].iloc[0] == 102 and "adj_close" not in raw.columns


def test_bad_adj_close_says_to_use_raw_prices(tmp_path):
    path = csv(tmp_path, lines("2020-01-02,10,11,9,10.5,0,100", "2020-01-03,10.5,11,10,10.8,10.8,120", header=YAHOO))
    with pytest.raises(DataError, match="Adj Close must be positive.*adjust=False"):
        load_ohlcv(path)
    assert load_ohlcv(path, adjust=False)["close"].iloc[0] == 10.5


def test_volume_less_file(tmp_path):
    bars = load_ohlcv(
        csv(tmp_path, lines("2020-01-02,10,11,9,10.5", "2020-01-03,10.5,11,10,10.8", header="Date,Open,High,Low,Close"))
    )
    assert list(bars.columns) == ["open", "high", "low", "close"]
    assert not summarize(bars).has_volume


def test_empty_volume_column_is_dropped(tmp_path):
    text = lines("2020-01-02,10,11,9,10.5,10.5,null", "2020-01-03,10.5,11,10,10.8,10.8,null", header=YAHOO)
    assert "volume" not in load_ohlcv(csv(tmp_path, text)).columns


def test_backtrader_style_header(tmp_path):
    text = lines(
        "2020-01-02,10,11,9,10.5,100,0",
        "2020-01-03,10.5,11,10,10.8,120,0",
        header="Date,Open,High,Low,Close,Volume,OpenInterest",
    )
    bars = load_ohlcv(csv(tmp_path, text))
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    generic = lines(
        "2020-01-02 00:00:00,10,11,9,10.5,100,0",
        "2020-01-03 00:00:00,10.5,11,10,10.8,120,0",
        header="datetime,open,high,low,close,volume,openinterest",
    )
    pd.testing.assert_frame_equal(load_ohlcv(csv(tmp_path, generic, "generic.csv")), bars)


@pytest.mark.parametrize(
    "header, sep",
    [
        ("DATE,OPEN,HIGH,LOW,CLOSE,VOLUME", ","),
        ("date;open;high;low;close;volume", ";"),
        ("Date\tOpen\tHigh\tLow\tClose\tVolume", "\t"),
    ],
)
def test_any_case_and_separator(tmp_path, header, sep):
    text = lines(*[r.replace(",", sep) for r in GOOD_ROWS], header=header)
    bars = load_ohlcv(csv(tmp_path, text))
    assert bars.index.name == "date" and len(bars) == 3 and bars["close"].iloc[-1] == 11


def test_time_column_names_the_dates_only_without_a_date_column(tmp_path):
    bars = load_ohlcv(csv(tmp_path, lines(*GOOD_ROWS, header="Time,Open,High,Low,Close,Volume")))
    assert bars.index[0] == pd.Timestamp("2020-01-02")
    intraday = lines(
        "2020-01-02,09:30,10,11,9,10.5,100",
        "2020-01-02,09:31,10.5,11,10,10.8,120",
        header="Date,Time,Open,High,Low,Close,Volume",
    )
    with pytest.raises(DataError, match="duplicated dates 2020-01-02.*synthmarket works with daily bars"):
        load_ohlcv(csv(tmp_path, intraday, "intraday.csv"))


def test_yyyymmdd_integer_dates(tmp_path):
    bars = load_ohlcv(csv(tmp_path, lines("20200102,10,11,9,10.5,100", "20200103,10.5,11,10,10.8,120")))
    assert list(bars.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03"]


def test_extra_columns_are_kept(tmp_path):
    text = lines("2020-01-02,10,11,9,10.5,100,calm", "2020-01-03,10.5,11,10,10.8,120,storm", header=HEADER + ",Regime")
    bars = load_ohlcv(csv(tmp_path, text))
    assert list(bars.columns) == ["open", "high", "low", "close", "volume", "Regime"]
    assert list(bars["Regime"]) == ["calm", "storm"]


def test_parquet_round_trip(tmp_path, sp500):
    bars = sp500.iloc[:300]
    as_index, as_column = tmp_path / "index.parquet", tmp_path / "column.parquet"
    bars.to_parquet(as_index)
    bars.reset_index().rename(columns=str.title).to_parquet(as_column)
    pd.testing.assert_frame_equal(load_ohlcv(as_index), bars)
    pd.testing.assert_frame_equal(load_ohlcv(as_column), bars)
    assert fingerprint(load_ohlcv(as_column)) == fingerprint(bars)


def test_csv_round_trip_has_the_same_fingerprint(tmp_path, sp500):
    bars = sp500.iloc[:300]
    path = tmp_path / "sp500.csv"
    bars.to_csv(path)  # index written as a 'date' column
    back = load_ohlcv(path)
    pd.testing.assert_frame_equal(back, bars, check_exact=False, rtol=1e-12)
    assert back.index.dtype == "datetime64[ns]"


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "bars.parquet"
    path.write_text(lines(*GOOD_ROWS))
    with pytest.raises(DataError, match="as Parquet"):
        load_ohlcv(path)


def test_dataframes_with_a_date_column_or_index(sp500):
    bars = sp500.iloc[:50]
    pd.testing.assert_frame_equal(load_ohlcv(bars.reset_index()), bars)
    upper = bars.rename(columns=str.upper)
    pd.testing.assert_frame_equal(load_ohlcv(upper), bars)
    tz = bars.tz_localize("America/New_York")
    pd.testing.assert_frame_equal(load_ohlcv(tz), bars)  # wall-clock dates are kept
    with pytest.raises(DataError, match="the DataFrame: high is below low at 1999-01-05"):
        broken = bars.copy()
        broken.loc[broken.index[1], "high"] = 1.0
        load_ohlcv(broken)


def test_loading_does_not_change_the_callers_frame(sp500):
    bars = sp500.iloc[:20].reset_index().rename(columns=str.title)
    before = bars.copy()
    load_ohlcv(bars)
    pd.testing.assert_frame_equal(bars, before)


def test_rounding_in_high_low_is_repaired(sp500):
    bars = sp500.iloc[:10].copy()
    bars.iloc[3, bars.columns.get_loc("high")] = max(bars["open"].iloc[3], bars["close"].iloc[3]) * (1 - 1e-12)
    fixed = load_ohlcv(bars)
    assert (fixed["high"] >= fixed[["open", "close"]].max(axis=1)).all()
    assert (fixed["low"] <= fixed[["open", "close"]].min(axis=1)).all()


# -- bundled data and date ranges ----------------------------------------------------------


def test_sp500_sample(sp500):
    assert len(sp500) == 5031
    assert sp500.index[0] == pd.Timestamp("1999-01-04") and sp500.index[-1] == pd.Timestamp("2018-12-31")
    assert list(sp500.columns) == ["open", "high", "low", "close", "volume"]
    assert sp500.index.is_monotonic_increasing and not sp500.index.has_duplicates


def test_nasdaq_sample_and_names_in_any_case():
    nasdaq = sample_data("NASDAQ")
    assert len(nasdaq) == 5031 and nasdaq["close"].iloc[-1] > 6000
    assert load_data(" Nasdaq ").equals(nasdaq)


def test_sample_data_returns_a_copy():
    first = sample_data("sp500")
    first.iloc[0, 0] = -1.0
    assert sample_data("sp500").iloc[0, 0] > 0


def test_unknown_sample_name():
    with pytest.raises(DataError, match="Unknown data set 'dax'.*Bundled sets: sp500, nasdaq"):
        sample_data("dax")


def test_date_range_selection(sp500):
    cut = load_data("sp500", start="2009-05-01", end="2009-05-31")
    assert cut.index[0] == pd.Timestamp("2009-05-01") and cut.index[-1] == pd.Timestamp("2009-05-29")
    assert len(cut) == 20
    with pytest.raises(DataError, match="holds 0 bar\\(s\\); the data run from 1999-01-04 to 2018-12-31"):
        select_dates(sp500, "2030-01-01", None)
    with pytest.raises(DataError, match="after the end date"):
        select_dates(sp500, "2010-01-01", "2009-01-01")
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        select_dates(sp500, "first of May", None)


# -- summary -------------------------------------------------------------------------------


def test_summary_of_sp500_matches_an_independent_computation(sp500):
    s = summarize(sp500)
    r = np.diff(np.log(sp500["close"].to_numpy()))
    assert s.n_bars == 5031 and s.has_volume and s.extra_columns == ()
    assert s.returns["mean"] == pytest.approx(r.mean(), rel=1e-12)
    assert s.returns["std"] == pytest.approx(r.std(ddof=1), rel=1e-12)
    assert s.returns["annualised_vol"] == pytest.approx(r.std(ddof=1) * np.sqrt(252), rel=1e-12)
    assert s.returns["skew"] == pytest.approx(stats.skew(r, bias=False), rel=1e-9)
    assert s.returns["excess_kurtosis"] == pytest.approx(stats.kurtosis(r, fisher=True, bias=False), rel=1e-9)
    assert (s.returns["min"], s.returns["max"]) == (r.min(), r.max())
    weekdays = np.busday_count(np.datetime64("1999-01-04"), np.datetime64("2019-01-01"))
    assert s.n_business_days == weekdays and s.missing_business_days == weekdays - 5031
    # the longest closure: the NYSE stayed shut from 11 to 14 September 2001
    assert s.longest_gap == (4, pd.Timestamp("2001-09-11"), pd.Timestamp("2001-09-14"))


def test_summary_gaps_on_a_small_calendar():
    index = pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-08", "2020-01-09", "2020-01-13", "2020-01-16"])
    bars = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": np.linspace(1, 2, 6)}, index=index)
    s = summarize(bars)
    # business days 2..16 Jan: 11; missing: 6, 7, 10, 14, 15 Jan
    assert (s.n_business_days, s.missing_business_days) == (11, 5)
    assert s.longest_gap == (2, pd.Timestamp("2020-01-06"), pd.Timestamp("2020-01-07"))
    full = summarize(bars.iloc[:2])
    assert full.missing_business_days == 0 and full.longest_gap is None
