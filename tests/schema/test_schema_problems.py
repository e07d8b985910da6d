"""Which failure a schema problem reports, and how it is worded.

Each case is a realistic mistake in an otherwise valid 2.6.0 document.  ``@asyncapi/parser`` 3
was run on every one (its message is quoted in the case's comment): the problem reported here
names the same property or value, at a pointer at least as deep, without its noise (for a
``oneOf`` it reports every branch's failures; we report the branch the author evidently meant).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from asyncapi_gw.schema import validate_asyncapi, validate_binding, validate_instance

CHANNEL = "/channels/rooms~1{roomId}"
SCHEMES = "/components/securitySchemes/k"
# Every security scheme type of 2.6.0, in the order of the schema's branches.
SCHEME_TYPES = (
    '["userPassword", "apiKey", "X509", "symmetricEncryption", "asymmetricEncryption", "http", '
    '"httpApiKey", "oauth2", "openIdConnect", "plain", "scramSha256", "scramSha512", "gssapi"]'
)


def document() -> dict[str, Any]:
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "Chat", "version": "1.0.0"},
        "servers": {"production": {"url": "ws://localhost:8080", "protocol": "ws"}},
        "channels": {
            "rooms/{roomId}": {
                "parameters": {"roomId": {"schema": {"type": "string"}}},
                "publish": {"message": {"payload": {"type": "object"}}},
                "subscribe": {"message": {"payload": {"type": "string"}}},
            }
        },
    }


def channel(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["channels"]["rooms/{roomId}"]  # type: ignore[no-any-return]


def message(doc: dict[str, Any]) -> dict[str, Any]:
    return channel(doc)["publish"]["message"]  # type: ignore[no-any-return]


def scheme(value: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["components"] = {"securitySchemes": {"k": value}}

    return mutate


def server_variable(value: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["servers"]["production"]["url"] = "ws://{host}:8080"
        doc["servers"]["production"]["variables"] = {"host": value}

    return mutate


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], list[tuple[str, str]]]] = {
    # official: Property "name" is not expected to be here
    "parameter with a stray key": (
        lambda d: channel(d)["parameters"]["roomId"].update(name="roomId"),
        [(f"{CHANNEL}/parameters/roomId/name", 'property "name" is not allowed here')],
    ),
    # official: "location" property type must be string
    "parameter location of the wrong type": (
        lambda d: channel(d)["parameters"]["roomId"].update(location=5),
        [(f"{CHANNEL}/parameters/roomId/location", '5 is not of type "string"')],
    ),
    # official: Property "foo" is not expected to be here (and "oneOf" required, "payload"
    # not expected: the failures of the message-list branch)
    "message with a stray key": (
        lambda d: message(d).update(foo=1),
        [(f"{CHANNEL}/publish/message/foo", 'property "foo" is not allowed here')],
    ),
    "message with a misspelt key": (
        lambda d: message(d).update(contentTyp="application/json"),
        [
            (
                f"{CHANNEL}/publish/message/contentTyp",
                'property "contentTyp" is not allowed here; did you mean "contentType"?',
            )
        ],
    ),
    # official: Property "contentType" is not expected to be here
    "message contentType null": (
        lambda d: message(d).update(contentType=None),
        [(f"{CHANNEL}/publish/message/contentType", 'null is not of type "string"')],
    ),
    "message headers not a schema": (
        lambda d: message(d).update(headers="x"),
        [
            (
                f"{CHANNEL}/publish/message/headers",
                '"x" is not of type "object" or "boolean"',
            )
        ],
    ),
    "message examples not a list": (
        lambda d: message(d).update(examples={"payload": 1}),
        [
            (
                f"{CHANNEL}/publish/message/examples",
                '{"payload": 1} is not of type "array"',
            )
        ],
    ),
    # official: Item at index 0 must have required property "payload"
    "message example with neither payload nor headers": (
        lambda d: message(d).update(examples=[{"name": "x"}]),
        [
            (
                f"{CHANNEL}/publish/message/examples/0",
                'required property "payload" or "headers" is missing',
            )
        ],
    ),
    "message correlationId without location": (
        lambda d: message(d).update(correlationId={"description": "x"}),
        [(f"{CHANNEL}/publish/message/correlationId", 'required property "location" is missing')],
    ),
    # official: "message" property type must be object
    "message not a mapping": (
        lambda d: channel(d)["publish"].update(message="hello"),
        [(f"{CHANNEL}/publish/message", '"hello" is not of type "object"')],
    ),
    "message trait with a message-only key": (
        lambda d: message(d).update(traits=[{"payload": 1}]),
        [(f"{CHANNEL}/publish/message/traits/0/payload", 'property "payload" is not allowed here')],
    ),
    "one of the messages of oneOf is wrong": (
        lambda d: channel(d)["publish"].update(
            message={
                "oneOf": [
                    {"payload": {"type": "object"}},
                    {"payload": {"type": 5}, "foo": 1},
                ]
            }
        ),
        [
            (f"{CHANNEL}/publish/message/oneOf/1/foo", 'property "foo" is not allowed here'),
            (
                f"{CHANNEL}/publish/message/oneOf/1/payload/type",
                '5 is not one of ["array", "boolean", "integer", "null", "number", "object", '
                '"string"]',
            ),
        ],
    ),
    # official: "type" property must be equal to one of the allowed values: ... Did you mean
    # "string"?
    "payload type misspelt": (
        lambda d: message(d).update(payload={"type": "strin"}),
        [
            (
                f"{CHANNEL}/publish/message/payload/type",
                '"strin" is not one of ["array", "boolean", "integer", "null", "number", '
                '"object", "string"]; did you mean "string"?',
            )
        ],
    ),
    "payload type list with a wrong item": (
        lambda d: message(d).update(payload={"type": ["string", "nul"]}),
        [
            (
                f"{CHANNEL}/publish/message/payload/type/1",
                '"nul" is not one of ["array", "boolean", "integer", "null", "number", "object", '
                '"string"]; did you mean "null"?',
            )
        ],
    ),
    "payload required not a list": (
        lambda d: message(d).update(payload={"type": "object", "required": True}),
        [(f"{CHANNEL}/publish/message/payload/required", 'true is not of type "array"')],
    ),
    "deep payload keyword out of range": (
        lambda d: message(d).update(payload={"properties": {"a": {"items": {"minItems": -1}}}}),
        [
            (
                f"{CHANNEL}/publish/message/payload/properties/a/items/minItems",
                "-1 is less than the minimum of 0",
            )
        ],
    ),
    "operation with a stray key": (
        lambda d: channel(d)["publish"].update(foo=True),
        [(f"{CHANNEL}/publish/foo", 'property "foo" is not allowed here')],
    ),
    "operationId of the wrong type": (
        lambda d: channel(d)["publish"].update(operationId=True),
        [(f"{CHANNEL}/publish/operationId", 'true is not of type "string"')],
    ),
    "channel with a stray key": (
        lambda d: channel(d).update(foo=1),
        [(f"{CHANNEL}/foo", 'property "foo" is not allowed here')],
    ),
    "channel servers not a list": (
        lambda d: channel(d).update(servers="production"),
        [(f"{CHANNEL}/servers", '"production" is not of type "array"')],
    ),
    # official: "channels" property must match format "uri-template"
    "channel name not a URI template": (
        lambda d: d["channels"].update({"a b": {}}),
        [("/channels/a b", 'the name "a b" is not a valid "uri-template"')],
    ),
    "server protocol of the wrong type": (
        lambda d: d["servers"]["production"].update(protocol=5),
        [("/servers/production/protocol", '5 is not of type "string"')],
    ),
    # official: Property "foo" is not expected to be here
    "server with a stray key": (
        lambda d: d["servers"]["production"].update(foo=5),
        [("/servers/production/foo", 'property "foo" is not allowed here')],
    ),
    # official: "production" property must have required property "url"
    "server without url": (
        lambda d: d["servers"]["production"].pop("url"),
        [("/servers/production", 'required property "url" is missing')],
    ),
    "server without url and with a stray key": (
        lambda d: d["servers"].update(production={"protocol": "ws", "foo": 1}),
        [
            ("/servers/production", 'required property "url" is missing'),
            ("/servers/production/foo", 'property "foo" is not allowed here'),
        ],
    ),
    # official: "production" property must have required property "url", Property "a" is not
    # expected to be here
    "server of a stray key only": (
        lambda d: d["servers"].update(production={"a": 1}),
        [
            ("/servers/production", 'required property "url" is missing'),
            ("/servers/production", 'required property "protocol" is missing'),
            ("/servers/production/a", 'property "a" is not allowed here'),
        ],
    ),
    "parameter of a stray key only": (
        lambda d: channel(d)["parameters"].update(roomId={"name": "roomId"}),
        [(f"{CHANNEL}/parameters/roomId/name", 'property "name" is not allowed here')],
    ),
    "server variable with a stray key": (
        server_variable({"default": "a", "foo": 1}),
        [("/servers/production/variables/host/foo", 'property "foo" is not allowed here')],
    ),
    # official: Item at index 0 must be string
    "server variable enum of booleans": (
        server_variable({"enum": [True, False]}),
        [
            ("/servers/production/variables/host/enum/0", 'true is not of type "string"'),
            ("/servers/production/variables/host/enum/1", 'false is not of type "string"'),
        ],
    ),
    "server security requirement not a list": (
        lambda d: d["servers"]["production"].update(security=[{"k": "x"}]),
        [("/servers/production/security/0/k", '"x" is not of type "array"')],
    ),
    # official: "k" property must have required property "in" (and five more, one per type)
    "apiKey scheme without in": (
        scheme({"type": "apiKey"}),
        [(SCHEMES, 'required property "in" is missing (for type: "apiKey")')],
    ),
    "apiKey scheme with an httpApiKey location": (
        scheme({"type": "apiKey", "in": "header"}),
        [(f"{SCHEMES}/in", '"header" is not one of ["user", "password"]')],
    ),
    "httpApiKey scheme without name": (
        scheme({"type": "httpApiKey", "in": "header"}),
        [(SCHEMES, 'required property "name" is missing (for type: "httpApiKey")')],
    ),
    "httpApiKey scheme with a bad location": (
        scheme({"type": "httpApiKey", "name": "a", "in": "body"}),
        [(f"{SCHEMES}/in", '"body" is not one of ["header", "query", "cookie"]')],
    ),
    "apiKey scheme with an httpApiKey name": (
        scheme({"type": "apiKey", "in": "user", "name": "x"}),
        [(f"{SCHEMES}/name", 'property "name" is not allowed here (for type: "apiKey")')],
    ),
    "http scheme without scheme": (
        scheme({"type": "http"}),
        [(SCHEMES, 'required property "scheme" is missing (for type: "http")')],
    ),
    "oauth2 flow without scopes": (
        scheme({"type": "oauth2", "flows": {"implicit": {"authorizationUrl": "https://a.b/c"}}}),
        [(f"{SCHEMES}/flows/implicit", 'required property "scopes" is missing')],
    ),
    "oauth2 flow not a mapping": (
        scheme({"type": "oauth2", "flows": {"implicit": "x"}}),
        [(f"{SCHEMES}/flows/implicit", '"x" is not of type "object"')],
    ),
    "oauth2 with an unknown flow": (
        scheme({"type": "oauth2", "flows": {"foo": {}}}),
        [(f"{SCHEMES}/flows/foo", 'property "foo" is not allowed here')],
    ),
    "openIdConnect without its URL": (
        scheme({"type": "openIdConnect"}),
        [(SCHEMES, 'required property "openIdConnectUrl" is missing (for type: "openIdConnect")')],
    ),
    "scheme with a stray key": (
        scheme({"type": "userPassword", "foo": 1}),
        [(f"{SCHEMES}/foo", 'property "foo" is not allowed here (for type: "userPassword")')],
    ),
    # official: "k" property must have required property "type"
    "scheme without type": (
        scheme({"description": "x"}),
        [(SCHEMES, 'required property "type" is missing')],
    ),
    # official: "type" property must be equal to one of the allowed values: "userPassword",
    # "apiKey", "http", "httpApiKey", "oauth2", "openIdConnect" (and five more lines)
    "scheme of an unknown type": (
        scheme({"type": "foo"}),
        [
            (
                f"{SCHEMES}/type",
                f'"foo" is not one of {SCHEME_TYPES}',
            )
        ],
    ),
    "scheme type misspelt": (
        scheme({"type": "apikey", "in": "user"}),
        [
            (
                f"{SCHEMES}/type",
                f'"apikey" is not one of {SCHEME_TYPES}; did you mean "apiKey"?',
            )
        ],
    ),
    "info without title": (
        lambda d: d["info"].pop("title"),
        [("/info", 'required property "title" is missing')],
    ),
    "contact with a bad email and a stray key": (
        lambda d: d["info"].update(contact={"email": "nope", "foo": 1}),
        [
            ("/info/contact/foo", 'property "foo" is not allowed here'),
            ("/info/contact/email", '"nope" is not a valid "email"'),
        ],
    ),
    "tag without name": (
        lambda d: d.update(tags=[{"description": "x"}]),
        [("/tags/0", 'required property "name" is missing')],
    ),
    "tags not a list": (
        lambda d: d.update(tags={"name": "x"}),
        [("/tags", '{"name": "x"} is not of type "array"')],
    ),
    "externalDocs without url": (
        lambda d: d.update(externalDocs={"description": "x"}),
        [("/externalDocs", 'required property "url" is missing')],
    ),
    "components with a stray key": (
        lambda d: d.update(components={"foo": {}}),
        [("/components/foo", 'property "foo" is not allowed here')],
    ),
    "long values are cut": (
        lambda d: d["info"].update(version={"a": list(range(100))}),
        [
            (
                "/info/version",
                '{"a": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, '
                '18, 19, 20… is not of type "string"',
            )
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_problem_names_what_the_author_got_wrong(name: str) -> None:
    mutate, expected = CASES[name]
    doc = document()
    mutate(doc)
    found = [(p.pointer, p.message) for p in validate_asyncapi(doc, "2.6.0")]
    assert found == expected


AMQP = "/channels/q/bindings/amqp"

BINDINGS: dict[str, tuple[str, str, dict[str, Any], list[tuple[str, str]]]] = {
    # the official parser does not check bindings
    "amqp routingKey channel with queue settings": (
        "amqp",
        "channel",
        {"is": "routingKey", "queue": {"name": "q"}, "bindingVersion": "0.2.0"},
        [
            (AMQP, 'required property "exchange" is missing (for is: "routingKey")'),
            (f"{AMQP}/queue", 'property "queue" is not allowed here (for is: "routingKey")'),
        ],
    ),
    "amqp queue channel with exchange settings": (
        "amqp",
        "channel",
        {"is": "queue", "exchange": {"name": "e"}, "bindingVersion": "0.2.0"},
        [
            (AMQP, 'required property "queue" is missing (for is: "queue")'),
            (f"{AMQP}/exchange", 'property "exchange" is not allowed here (for is: "queue")'),
        ],
    ),
    "amqp channel of an unknown kind": (
        "amqp",
        "channel",
        {"is": "topic", "bindingVersion": "0.2.0"},
        [(f"{AMQP}/is", '"topic" is not one of ["queue", "routingKey"]')],
    ),
    "ws channel binding with a stray key": (
        "ws",
        "channel",
        {"method": "GET", "foo": 1, "bindingVersion": "0.1.0"},
        [("/channels/q/bindings/ws/foo", 'property "foo" is not allowed here')],
    ),
    "ws channel binding with a bad method": (
        "ws",
        "channel",
        {"method": "PUT", "bindingVersion": "0.1.0"},
        [("/channels/q/bindings/ws/method", '"PUT" is not one of ["GET", "POST"]')],
    ),
    "http operation binding of the wrong type": (
        "http",
        "operation",
        {"type": "get", "bindingVersion": "0.1.0"},
        [("/channels/q/bindings/http/type", '"get" is not one of ["request", "response"]')],
    ),
}


@pytest.mark.parametrize("name", list(BINDINGS))
def test_binding_problems_name_what_the_author_got_wrong(name: str) -> None:
    protocol, kind, binding, expected = BINDINGS[name]
    found = validate_binding(
        binding, protocol=protocol, kind=kind, pointer=f"/channels/q/bindings/{protocol}"
    )
    assert [(p.pointer, p.message) for p in found] == expected


def test_binding_version_of_the_wrong_type_is_written_as_json() -> None:
    found = validate_binding({"bindingVersion": [1]}, protocol="ws", kind="channel", pointer="/b")
    assert [(p.pointer, p.message) for p in found] == [
        ("/b/bindingVersion", '[1] is not of type "string"')
    ]


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        ({"enum": ["on", "off"]}, None, 'null is not one of ["on", "off"]'),
        ({"const": [True, False]}, [True], "[true, false] was expected, not [true]"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}},
            {"a": None},
            'null is not of type "string"',
        ),
        ({"minLength": 3}, "ab", '"ab" is shorter than 3 characters'),
        ({"maxLength": 1}, "ab", '"ab" is longer than 1 character'),
        ({"pattern": "^a+$"}, "b", '"b" does not match the pattern "^a+$"'),
        ({"minItems": 2}, [1], "[1] has fewer than 2 items"),
        ({"maxItems": 1}, [1, 2], "[1, 2] has more than 1 item"),
        ({"uniqueItems": True}, [1, 2, 1], "[1, 2, 1] has the item 1 more than once"),
        ({"minProperties": 1}, {}, "{} has fewer than 1 property"),
        ({"maximum": 3}, 4, "4 is greater than the maximum of 3"),
        ({"exclusiveMinimum": 3}, 3, "3 is not greater than the exclusive minimum of 3"),
        ({"multipleOf": 2}, 3, "3 is not a multiple of 2"),
        ({"not": {"type": "string"}}, "x", '"x" matches the schema of "not", which it must not'),
        ({"contains": {"const": 1}}, [2], '[2] has no item that matches the schema of "contains"'),
        ({"dependencies": {"a": ["b"]}}, {"a": 1}, 'property "b" is required when "a" is present'),
        ({"items": [{}], "additionalItems": False}, [1, 2], "[1, 2] has more than 1 item"),
        (False, {"a": 1}, '{"a": 1} is not allowed here'),
        (
            {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
            1,
            '1 matches more than one of the schemas of "oneOf"; it must match exactly one',
        ),
        (
            {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            None,
            'null is not of type "integer" or "string"',
        ),
        (
            {"oneOf": [{"const": "a"}, {"enum": ["b", "c"]}]},
            "d",
            '"d" is not one of ["a", "b", "c"]',
        ),
        (
            {"anyOf": [{"minProperties": 2}, {"maxProperties": 0}]},
            {"b": 1},
            '{"b": 1} matches none of the schemas of "anyOf": {"b": 1} has fewer than 2 '
            'properties; or {"b": 1} has more than 0 properties',
        ),
    ],
)
def test_instance_problems_write_values_as_json(schema: Any, instance: Any, expected: str) -> None:
    found = validate_instance(instance, schema, pointer="", rule="r")
    assert [p.message for p in found] == [expected]


def test_an_invalid_user_schema_is_explained_by_its_culprit() -> None:
    found = validate_instance(1, {"type": "strin"}, pointer="/x", rule="r")
    assert [p.message for p in found] == [
        'cannot check against an invalid schema: at /type, "strin" is not one of ["array", '
        '"boolean", "integer", "null", "number", "object", "string"]; did you mean "string"?'
    ]
    found = validate_instance(1, ["x" * 200], pointer="/x", rule="r")
    assert found[0].message == ('the schema ["' + "x" * 77 + "… is not a JSON Schema")
