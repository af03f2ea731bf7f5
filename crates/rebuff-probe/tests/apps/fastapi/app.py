"""Widgets, as a FastAPI user writes them: an X-API-Key header scheme, CRUD, FastAPI's defaults.

`rebuff probe`'s tests start it on loopback (`uvicorn app:app`) and check the probe's verdict
against `expected.txt`. Nothing here is tuned for the probe: the faults it finds are the
framework's defaults and one handler's `KeyError`.
"""

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

API_KEY = "fk_test_5d1c9e7a2b4f"

app = FastAPI(title="widgets", version="1")
api_key = APIKeyHeader(name="X-API-Key")


def require_key(key: str = Security(api_key)) -> str:
    if key != API_KEY:
        raise HTTPException(status_code=401, detail="Unknown API key")
    return key


class NewWidget(BaseModel):
    name: str
    size: int


class Widget(NewWidget):
    id: int


WIDGETS: dict[int, Widget] = {7: Widget(id=7, name="sprocket", size=3)}


@app.get("/widgets", dependencies=[Depends(require_key)])
def list_widgets(limit: int = 20) -> list[Widget]:
    return list(WIDGETS.values())[:limit]


@app.post("/widgets", status_code=201, dependencies=[Depends(require_key)])
def create_widget(new: NewWidget) -> Widget:
    widget = Widget(id=max(WIDGETS, default=0) + 1, **new.model_dump())
    WIDGETS[widget.id] = widget
    return widget


@app.get("/widgets/{widget_id}", dependencies=[Depends(require_key)])
def get_widget(widget_id: int) -> Widget:
    if widget_id not in WIDGETS:
        raise HTTPException(status_code=404, detail="Widget not found")
    return WIDGETS[widget_id]


@app.put("/widgets/{widget_id}", dependencies=[Depends(require_key)])
def replace_widget(widget_id: int, new: NewWidget) -> Widget:
    if widget_id not in WIDGETS:
        raise HTTPException(status_code=404, detail="Widget not found")
    WIDGETS[widget_id] = Widget(id=widget_id, **new.model_dump())
    return WIDGETS[widget_id]


@app.delete("/widgets/{widget_id}", status_code=204, dependencies=[Depends(require_key)])
def delete_widget(widget_id: int) -> None:
    # The bug the probe should find: an unknown id is a KeyError, a plain-text 500.
    del WIDGETS[widget_id]
