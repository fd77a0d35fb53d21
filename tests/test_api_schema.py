"""The API's OpenAPI document names what every route answers: a client generated from it gets a typed
model for each JSON body, and the other bodies (event streams, images, HTML, metrics) say their media type."""

from __future__ import annotations

import pytest

from sieve.server import create_app
from sieve.settings import Settings

# a tool call answers the called tool's own result; `GET /v1/tools` lists each tool's schema
FREE_FORM = {("POST", "/v1/tools/{name}/invoke")}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(Settings(home=tmp_path_factory.mktemp("openapi-home")))


def success(operation: dict) -> tuple[str, dict]:
    status = next(code for code in operation["responses"] if code.startswith("2"))
    return status, operation["responses"][status]


def test_every_json_route_answers_a_named_model_and_every_other_route_names_its_media_type(app):
    paths = app.openapi()["paths"]
    routes = [(method.upper(), path) for path, operations in paths.items() for method in operations]
    assert len(routes) > 30 and ("GET", "/v1/knowledge-bases/{kb}/documents") in routes
    unnamed = []
    for method, path in routes:
        status, response = success(paths[path][method.lower()])
        content = response.get("content", {})
        if status == "204" or (method, path) in FREE_FORM:
            continue
        json_body = content.get("application/json", {}).get("schema", {})
        others = set(content) - {"application/json"}
        if "$ref" not in json_body and not others:
            unnamed.append(f"{method} {path}")
    assert unnamed == []


@pytest.mark.parametrize(("method", "path", "model"), [
    ("get", "/v1/knowledge-bases", "KnowledgeBasesPublic"),
    ("post", "/v1/knowledge-bases", "KnowledgeBasePublic"),
    ("post", "/v1/knowledge-bases/{kb}/search", "SearchPublic"),
    ("get", "/v1/knowledge-bases/{kb}/documents", "DocumentsPublic"),
    ("get", "/v1/knowledge-bases/{kb}/documents/{doc_id}", "DocumentPublic"),
    ("post", "/v1/knowledge-bases/{kb}/documents", "JobPublic"),
    ("get", "/v1/jobs/{job_id}", "JobPublic"),
    ("get", "/v1/knowledge-bases/{kb}/evaluations/{evaluation_id}", "EvaluationPublic"),
    ("get", "/v1/models", "ModelList"),
    ("get", "/readyz", "ReadinessPublic"),
])
def test_the_main_resources_answer_their_public_model(app, method, path, model):
    _, response = success(app.openapi()["paths"][path][method])
    assert response["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}


def test_moments_are_documented_as_date_times_and_a_document_lists_its_fields(app):
    schemas = app.openapi()["components"]["schemas"]
    document = schemas["DocumentPublic"]["properties"]
    assert {"doc_id", "filename", "title", "owner", "tags", "meta", "mime_type", "source_uri", "chunks", "created_at",
            "updated_at", "acl", "chunk_texts"} == set(document)
    assert {"type": "string", "format": "date-time"} in document["created_at"]["anyOf"]
    assert schemas["JobPublic"]["properties"]["created_at"]["format"] == "date-time"
