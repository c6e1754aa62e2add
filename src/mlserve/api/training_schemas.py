"""Response shapes of a training record (``torch_mlp``): see
:class:`mlserve.store.documents.TrainingRecord`."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Float, Integer, List, Nested, String


class TrainingCurveOut(Schema):
    epoch = List(Integer(), required=True)
    train_loss = List(Float(), required=True)
    valid_loss = List(Float(allow_none=True), required=True)
    lr = List(Float(), required=True, metadata={"description": "learning rate of the pass"})
    online = List(Boolean(), required=True, metadata={"description": "a pass of an online update"})


class TrainingOut(Schema):
    device = String(required=True, metadata={"description": "cpu or cuda: where it trained"})
    torch_version = String(required=True)
    threads = Integer(required=True, metadata={"description": "torch CPU threads"})
    loss = String(
        required=True, metadata={"description": "mse (standardised target) or cross_entropy"}
    )
    epochs = Integer(required=True, metadata={"description": "epochs the fit ran"})
    best_epoch = Integer(
        allow_none=True, metadata={"description": "the epoch whose weights were kept"}
    )
    online_updates = Integer(
        required=True, metadata={"description": "passes of online updates since"}
    )
    curve = Nested(TrainingCurveOut, required=True)
