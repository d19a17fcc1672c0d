"""Running Dash callbacks as plain functions, with the trigger they would see in the app."""
from contextvars import copy_context

from dash._callback_context import context_value
from dash._utils import AttributeDict


def run_callback(func, triggered: dict, *args):
    """triggered: {"component.prop": value} for the inputs that changed."""
    def call():
        context_value.set(AttributeDict(triggered_inputs=[
            {"prop_id": k, "value": v} for k, v in triggered.items()]))
        return func(*args)

    return copy_context().run(call)
