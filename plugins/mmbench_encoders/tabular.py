"""Table rows to vectors: standardised numeric columns and one-hot categorical columns."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.params import Param
from mmbench.plugin import Encoder

MISSING = "<missing>"


def as_frame(items: Any):
    """A split's rows as a DataFrame: a DataFrame as is, else whatever ``pd.DataFrame``
    takes (a list of dicts, a dict of columns, a 2-D array)."""
    import pandas as pd

    if isinstance(items, pd.DataFrame):
        return items.reset_index(drop=True)
    if isinstance(items, pd.Series):
        return pd.DataFrame(list(items))
    return pd.DataFrame(list(items) if not isinstance(items, (dict, np.ndarray)) else items)


class Tabular(Encoder):
    """Standardise numeric columns and one-hot encode categorical ones, learned on train.

    Metadata (age, sex, site, comorbidities) is a modality of its own in the papers;
    this turns a split's rows (a pandas DataFrame, or a list of dicts) into vectors a fusion
    can read. Everything is learned from the TRAIN split only:

    - Numeric columns (numeric dtype, booleans as 0/1, unless listed in ``categorical``):
      ``(x - train mean) / train std`` (std 0 -> 1). A missing value (NaN / None) is imputed
      with the train mean, i.e. 0 after scaling; with ``missing_indicator`` each numeric
      column that had missing values in train also gets a 0/1 "was missing" column.
    - Categorical columns (everything else): one column per train category, the
      ``max_categories`` most frequent (ties by name); a missing value is the category
      ``"<missing>"`` when train had missing values in that column. A category not kept
      from train (unseen, rare, or missing without a train counterpart) is all zeros.
    - Columns absent from a later split are treated as missing; extra columns are ignored.

    Output columns: numeric columns (in train order), their missing indicators, then the
    one-hot blocks. ``columns`` restricts the encoder to the listed columns.
    """

    name = "tabular"
    modalities = ("tabular",)
    fitted = True
    parameters = (
        Param("columns", list, [], "columns to use (empty: all of them)"),
        Param("categorical", list, [], "columns to one-hot even though they are numeric (codes, years)"),
        Param("max_categories", int, 50, "most frequent train categories kept per column", min=1),
        Param("missing_indicator", bool, True, "add a 0/1 column per numeric column with missing train values"),
        Param("standardize", bool, True, "scale numeric columns to train mean 0 and std 1 (else only impute)"),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.numeric: list[str] = []
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}
        self.indicators: list[str] = []
        self.categories: dict[str, list[str]] = {}
        self._fitted = False

    def fit(self, modality: str, items: Any) -> None:
        import pandas as pd

        frame = self._select(as_frame(items))
        forced = set(self.params["categorical"])
        self.numeric, self.categories, self.means, self.stds, self.indicators = [], {}, {}, {}, []
        for column in frame.columns:
            values = frame[column]
            if column not in forced and (pd.api.types.is_numeric_dtype(values) or
                                         pd.api.types.is_bool_dtype(values)):
                x = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
                observed = x[~np.isnan(x)]
                self.numeric.append(column)
                self.means[column] = float(observed.mean()) if len(observed) else 0.0
                std = float(observed.std()) if len(observed) else 0.0
                self.stds[column] = std if std > 0 else 1.0
                if self.params["missing_indicator"] and np.isnan(x).any():
                    self.indicators.append(column)
            else:
                counts = _strings(values).value_counts()
                ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                self.categories[column] = [c for c, _ in ranked[: self.params["max_categories"]]]
        self._fitted = True

    def encode(self, modality: str, items: Any) -> np.ndarray:
        import pandas as pd

        if not self._fitted:
            raise RuntimeError("tabular: call fit() on the train rows before encode()")
        frame = as_frame(items)
        n = len(frame)
        blocks = []
        for column in self.numeric:
            x = (pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
                 if column in frame.columns else np.full(n, np.nan))
            missing = np.isnan(x)
            x = np.where(missing, self.means[column], x)
            if self.params["standardize"]:
                x = (x - self.means[column]) / self.stds[column]
            blocks.append(x[:, None])
        for column in self.indicators:
            x = (pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
                 if column in frame.columns else np.full(n, np.nan))
            blocks.append(np.isnan(x).astype(float)[:, None])
        for column, categories in self.categories.items():
            values = (_strings(frame[column]).to_numpy() if column in frame.columns
                      else np.full(n, MISSING, dtype=object))
            blocks.append((values[:, None] == np.array(categories, dtype=object)[None, :]).astype(float))
        if not blocks:
            return np.zeros((n, 1), dtype=np.float32)
        return np.hstack(blocks).astype(np.float32)

    @property
    def feature_names(self) -> list[str]:
        """One name per output column (after ``fit``)."""
        return ([*self.numeric, *(f"{c}_missing" for c in self.indicators)]
                + [f"{c}={v}" for c, cats in self.categories.items() for v in cats])

    def _select(self, frame):
        wanted = self.params["columns"]
        if not wanted:
            return frame
        absent = [c for c in wanted if c not in frame.columns]
        if absent:
            from mmbench.errors import UserError

            raise UserError(f"tabular: columns {absent} are not in the table (it has {list(frame.columns)})")
        return frame[wanted]


def _strings(values):
    """A column as strings, missing values as ``"<missing>"``."""
    return values.astype(object).where(values.notna(), MISSING).astype(str)
