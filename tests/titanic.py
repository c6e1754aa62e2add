"""A Titanic-style passenger table with the traits of the real one, generated, seeded.

800 rows: ``PassengerId`` (1..800, a row number), ``Survived`` (the target, 0/1),
``Pclass``, ``Name`` (``"Surname, Title. Given"``: quoted in CSV, commas inside,
unique per row), ``Sex``, ``Age`` (about 20 % missing), ``SibSp``, ``Parch``,
``Ticket`` (codes such as ``"A/5 21171"``, hundreds of distinct values), ``Fare``,
``Cabin`` (about 77 % missing, ``"C85"``-style codes) and ``Embarked`` (two missing).
Survival depends on sex, class and age, as in the real table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SURNAMES = [
    "Braund",
    "Cumings",
    "Heikkinen",
    "Futrelle",
    "Allen",
    "Moran",
    "McCarthy",
    "Palsson",
    "Johnson",
    "Nasser",
    "Sandstrom",
    "Bonnell",
    "Saundercock",
    "Andersson",
    "Vestrom",
    "Hewlett",
    "Rice",
    "Williams",
    "Vander Planke",
    "Masselmani",
]
GIVEN = [
    "Owen Harris",
    "John Bradley",
    "Laina",
    "Jacques Heath",
    "William Henry",
    "James",
    "Timothy J",
    "Gosta Leonard",
    "Oscar W",
    "Nicholas",
    "Marguerite Rut",
    "Elizabeth",
    "Anders Johan",
    "Hulda Amanda Adolfina",
    "Mary D",
    "Eugene",
    "Charles Eugene",
]
PREFIXES = ["", "", "", "A/5 ", "PC ", "STON/O2. ", "C.A. ", "SC/Paris ", "W./C. "]
# The columns trained "as is" (PassengerId and Name are id-like, Survived the target).
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked"]


def titanic_frame(n_rows: int = 800, seed: int = 0) -> pd.DataFrame:
    """The table, shape (n_rows, 12)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["male", "female"], n_rows, p=[0.65, 0.35])
    pclass = rng.choice([1, 2, 3], n_rows, p=[0.24, 0.21, 0.55])
    age = np.round(rng.gamma(5.0, 6.0, n_rows), 1)
    fare = np.round(
        np.where(pclass == 1, 80.0, np.where(pclass == 2, 20.0, 9.0))
        * rng.lognormal(0.0, 0.5, n_rows),
        4,
    )
    logit = 1.2 * (sex == "female") * 2 - 1.0 * (pclass - 2) - 0.02 * (age - 30) - 1.0
    survived = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    titles = np.where(sex == "male", "Mr.", rng.choice(["Mrs.", "Miss."], n_rows))
    names = [
        f"{SURNAMES[i % len(SURNAMES)]}, {t} {GIVEN[(i * 7) % len(GIVEN)]} ({i})"
        for i, t in enumerate(titles)
    ]
    tickets = [f"{PREFIXES[k % len(PREFIXES)]}{k}" for k in rng.integers(1000, 400000, n_rows)]
    tickets = [tickets[i] if i % 5 else tickets[max(i - 1, 0)] for i in range(n_rows)]
    cabins = np.where(
        rng.random(n_rows) < 0.23,
        [
            f"{d}{n}"
            for d, n in zip(
                rng.choice(list("ABCDEF"), n_rows), rng.integers(1, 130, n_rows), strict=True
            )
        ],
        None,
    )
    embarked = rng.choice(["S", "C", "Q"], n_rows, p=[0.72, 0.19, 0.09]).astype(object)
    embarked[[61, 629]] = None
    frame = pd.DataFrame(
        {
            "PassengerId": np.arange(1, n_rows + 1),
            "Survived": survived,
            "Pclass": pclass,
            "Name": names,
            "Sex": sex,
            "Age": np.where(rng.random(n_rows) < 0.2, np.nan, age),
            "SibSp": rng.choice([0, 1, 2, 3], n_rows, p=[0.68, 0.23, 0.06, 0.03]),
            "Parch": rng.choice([0, 1, 2], n_rows, p=[0.76, 0.13, 0.11]),
            "Ticket": tickets,
            "Fare": fare,
            "Cabin": cabins,
            "Embarked": embarked,
        }
    )
    return frame


def titanic_csv(n_rows: int = 800, seed: int = 0) -> bytes:
    """The table as CSV bytes: names quoted (they hold commas), missing as empty."""
    return titanic_frame(n_rows, seed).to_csv(index=False).encode()
