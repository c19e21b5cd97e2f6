"""A v1 raw-HTTP scoring script (azureml.contrib.services), its imports renamed by
``modelyard migrate``; the query's ``action`` picks what it does."""

import hashlib
import json

from modelyard.contrib.services.aml_request import AMLRequest, rawhttp
from modelyard.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    if request.method == "GET":
        # v1's sample answers the path and query back.
        answer = {
            "full_path": request.full_path,
            "path": request.path,
            "url": request.url,
            "args": request.args.to_dict(flat=False),
            "n": request.args.get("n", type=int),
            "header": request.headers.get("x-caller"),
        }
        return AMLResponse(json.dumps(answer), 200, {"Content-Type": "application/json"})
    if request.method != "POST":
        return AMLResponse("bad request", 500)
    action = request.args.get("action", "json")
    if action == "echo":  # the body back as it came, with its type
        data = request.get_data(False)
        headers = {"Content-Type": request.content_type, "X-Bytes": str(len(request.data))}
        return AMLResponse(data, 200, headers)
    if action == "json":  # not an AMLResponse: answered as JSON
        return {"got": request.get_json(), "same": request.json == request.get_json()}
    if action == "files":
        files = {
            name: {
                "filename": upload.filename,
                "type": upload.content_type,
                "sha256": hashlib.sha256(upload.read()).hexdigest(),
            }
            for name, upload in request.files.items()
        }
        return {"files": files, "form": request.form.to_dict(flat=False)}
    if action == "status":
        return AMLResponse("accepted", int(request.args["code"]), {"X-Model": "raw-v1"})
    if action == "raise":
        raise ValueError("cannot score this (a test)")
    return AMLResponse(f"unknown action {action!r}", 400)
