import numpy as np

from synthmarket.bars import Anchor, to_bars, to_features


def test_round_trip_on_real_bars(sp500):
    df = sp500.iloc[:600]
    back = to_bars(to_features(df), Anchor.after(df.iloc[:1]), index=df.index[1:])
    np.testing.assert_allclose(back.to_numpy(), df.iloc[1:].to_numpy(), rtol=1e-9)
