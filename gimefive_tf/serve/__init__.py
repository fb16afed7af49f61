"""SavedModel serving without Docker: TF Serving's REST API, /v1/analyze and a web page.

    python -m gimefive_tf.serve                       # the shipped model at 127.0.0.1:8501
    python -m gimefive_tf.serve --savedmodel export/savedmodel/gimefive

A client written against this server works unchanged against `tensorflow/serving` on the same
exported SavedModel (same paths, JSON and status codes).
"""

from gimefive_tf.serve.app import create_app
from gimefive_tf.serve.servable import RequestError, Servable

__all__ = ["create_app", "RequestError", "Servable"]
