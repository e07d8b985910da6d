"""The semantic rules of AsyncAPI 2.x, applied after schema validation.

First the ``error`` rules of the v2 ruleset of the official parser, ``@asyncapi/parser`` (v3),
under its names; its ``warning`` and ``info`` rules (missing ``operationId``, unused security
schemes, ...) are not errors there and are not checked here.  Then, as warnings, rules the
specification's text states that neither its JSON Schema nor the official parser checks: a
document the official parser accepts stays valid, with the breach reported.

=========================================== ================================================
asyncapi2-server-security                   ``servers.*.security`` names schemes defined in
                                            ``components.securitySchemes``; an ``oauth2``
                                            scheme's scopes are defined in one of its flows
asyncapi2-server-variables                  the ``{var}`` of a server url and its
                                            ``variables`` match, both ways
asyncapi2-channel-parameters                the ``{param}`` of a channel name and its
                                            ``parameters`` match, both ways
asyncapi2-channel-servers                   a channel's ``servers`` are defined in ``servers``
asyncapi2-channel-no-query-nor-fragment     no ``?`` or ``#`` in a channel name
asyncapi2-operation-operationId-uniqueness  ``operationId`` unique; the last trait giving one
                                            wins over the operation's own
asyncapi2-operation-security                as for servers, for ``channels.*.*.security``
asyncapi2-message-examples                  examples of messages (and message traits) without
                                            ``schemaFormat`` match ``payload`` and ``headers``
asyncapi2-message-messageId-uniqueness      ``messageId`` unique; traits as for operations
asyncapi2-tags-uniqueness                   no tag name twice in one ``tags`` list
asyncapi2-schemas                           a payload in an AsyncAPI or JSON Schema format is
                                            a valid AsyncAPI Schema Object
asyncapi2-schema-default                    a schema's top-level ``default`` matches it
asyncapi2-schema-examples                   a schema's top-level ``examples`` match it
asyncapi2-message-examples-custom-format    example payloads of messages with an explicit
                                            ``schemaFormat`` match the payload
=========================================== ================================================

The specification's own rules, all warnings:

=========================================== ================================================
asyncapi2-components-keys                   keys of the ``components`` maps match
                                            ``^[a-zA-Z0-9\\.\\-_]+$``
asyncapi2-server-names                      keys of ``servers`` match ``^[A-Za-z0-9_\\-]+$``
asyncapi2-security-requirement-scopes       a requirement of a scheme that is not ``oauth2``
                                            or ``openIdConnect`` lists no scopes
asyncapi2-schema-discriminator              a schema's ``discriminator`` is in its
                                            ``properties`` and ``required``
asyncapi2-message-trait-examples            message trait examples have a message example's
                                            shape, where the version's schema leaves it open
=========================================== ================================================

Where the official parser is lenient its verdicts are kept, so that a document it accepts is
accepted here: a url or channel name with ``{x}`` but no ``variables``/``parameters`` object at
all passes; only ``oauth2`` scopes are checked; a string ``default`` or ``examples`` item is
never reported; operation and message ids and operation security are looked up under
``channels`` only; a payload in an unknown ``schemaFormat`` is not checked (the official parser
warns), but example payloads are still validated against it as JSON Schema.

The data is the document after ``$ref`` resolution; a ``$ref`` left in place (a cycle) is never
followed, and a schema holding one is not used to validate anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from asyncapi_gw.errors import Problem, Severity, json_excerpt
from asyncapi_gw.pointers import pointer_to
from asyncapi_gw.schema import validate_instance

__all__ = ["RULE_NAMES", "check_rules"]

_Path = tuple[str | int, ...]

_SERVER_SECURITY = "asyncapi2-server-security"
_SERVER_VARIABLES = "asyncapi2-server-variables"
_CHANNEL_PARAMETERS = "asyncapi2-channel-parameters"
_CHANNEL_SERVERS = "asyncapi2-channel-servers"
_CHANNEL_NAME = "asyncapi2-channel-no-query-nor-fragment"
_OPERATION_ID = "asyncapi2-operation-operationId-uniqueness"
_OPERATION_SECURITY = "asyncapi2-operation-security"
_MESSAGE_EXAMPLES = "asyncapi2-message-examples"
_MESSAGE_ID = "asyncapi2-message-messageId-uniqueness"
_TAGS = "asyncapi2-tags-uniqueness"
_SCHEMAS = "asyncapi2-schemas"
_SCHEMA_DEFAULT = "asyncapi2-schema-default"
_SCHEMA_EXAMPLES = "asyncapi2-schema-examples"
_MESSAGE_EXAMPLES_CUSTOM = "asyncapi2-message-examples-custom-format"
# The specification's own rules, which neither the official schema nor parser checks: warnings.
_COMPONENTS_KEYS = "asyncapi2-components-keys"
_SERVER_NAMES = "asyncapi2-server-names"
_SECURITY_SCOPES = "asyncapi2-security-requirement-scopes"
_DISCRIMINATOR = "asyncapi2-schema-discriminator"
_TRAIT_EXAMPLES = "asyncapi2-message-trait-examples"

RULE_NAMES: tuple[str, ...] = (
    _SERVER_SECURITY,
    _SERVER_VARIABLES,
    _CHANNEL_PARAMETERS,
    _CHANNEL_SERVERS,
    _CHANNEL_NAME,
    _OPERATION_ID,
    _OPERATION_SECURITY,
    _MESSAGE_EXAMPLES,
    _MESSAGE_ID,
    _TAGS,
    _SCHEMAS,
    _SCHEMA_DEFAULT,
    _SCHEMA_EXAMPLES,
    _MESSAGE_EXAMPLES_CUSTOM,
    _COMPONENTS_KEYS,
    _SERVER_NAMES,
    _SECURITY_SCOPES,
    _DISCRIMINATOR,
    _TRAIT_EXAMPLES,
)

_OAUTH2_FLOWS = ("implicit", "password", "clientCredentials", "authorizationCode")
_OPERATION_KINDS = ("subscribe", "publish")  # the official parser's order
_SCOPED_SCHEME_TYPES = ("oauth2", "openIdConnect")
# The maps of a Components Object (2.0.0-2.6.0) and the pattern their keys must match.
_COMPONENT_MAPS = (
    "schemas",
    "servers",
    "channels",
    "serverVariables",
    "messages",
    "securitySchemes",
    "parameters",
    "correlationIds",
    "operationTraits",
    "messageTraits",
    "serverBindings",
    "channelBindings",
    "operationBindings",
    "messageBindings",
)
_COMPONENT_KEY = re.compile(r"[a-zA-Z0-9.\-_]+")
# The official schema gives these two maps a key pattern but no rule for other keys.
_PATTERN_ONLY_MAPS = ("securitySchemes", "correlationIds")
_SERVER_NAME = re.compile(r"[A-Za-z0-9_\-]+")
# The fields of a Message Example Object; 2.0.0 has only headers and payload, and no minimum.
_EXAMPLE_FIELDS = ("name", "summary", "headers", "payload")
_EXAMPLE_FIELDS_2_0 = ("headers", "payload")
# Versions whose official schema already gives message trait examples their full shape.
_SHAPED_TRAIT_EXAMPLES = ("2.1.0", "2.6.0")
# Keywords of a Schema Object that hold subschemas: one, a map of them, or a list of them.
_SUBSCHEMA = (
    "additionalProperties",
    "additionalItems",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions", "dependencies")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_TEMPLATE = re.compile(r"\{(.+?)\}")
# The schema formats of the official parser's built-in (AsyncAPI) schema parser.
_SPEC_VERSIONS = ("2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0", "3.0.0", "3.1.0")
# The official parser checks a payload against the Schema Object of the document's version; the
# 2.x Schema Objects differ only in annotations, so the latest one gives the same verdicts.
_SCHEMA_OBJECT = {"$ref": "http://asyncapi.com/definitions/2.6.0/schema.json"}
_ASYNCAPI_SCHEMA_FORMATS = frozenset(
    [f"application/schema{suffix};version=draft-07" for suffix in ("", "+json", "+yaml")]
    + [
        f"application/vnd.aai.asyncapi{suffix};version={spec}"
        for spec in _SPEC_VERSIONS
        for suffix in ("", "+json", "+yaml")
    ]
)


def check_rules(data: Mapping[str, Any]) -> list[Problem]:
    """Every error the official v2 ruleset finds in ``data``, an AsyncAPI 2.x document, then
    the warnings of the specification's own rules."""
    if not isinstance(data, Mapping):
        return []
    checks: tuple[Callable[[Mapping[str, Any]], Iterator[Problem]], ...] = (
        _server_security,
        _server_variables,
        _channel_parameters,
        _channel_servers,
        _channel_names,
        _operation_ids,
        _operation_security,
        _message_examples,
        _message_ids,
        _tags,
        _payload_schemas,
        _schema_defaults,
        _schema_examples,
        _component_keys,
        _server_names,
        _security_scopes,
        _discriminators,
        _trait_examples,
    )
    return [problem for check in checks for problem in check(data)]


# --- walking --------------------------------------------------------------------------------


def _problem(path: _Path, rule: str, message: str) -> Problem:
    return Problem(pointer=pointer_to(*path), rule=rule, message=message)


def _warning(path: _Path, rule: str, message: str) -> Problem:
    return Problem(pointer=pointer_to(*path), rule=rule, message=message, severity=Severity.WARNING)


def _get(node: object, key: str) -> Any:
    return node.get(key) if isinstance(node, Mapping) else None


def _children(node: object, path: _Path) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """The mapping values of a mapping, or the mapping items of a list."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(value, Mapping):
                yield (*path, str(key)), value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, Mapping):
                yield (*path, index), value


def _child(node: object, key: str, path: _Path) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    value = _get(node, key)
    if isinstance(value, Mapping):
        yield (*path, key), value


def _js_truthy(value: object) -> bool:
    """JavaScript truthiness: empty objects and arrays are true."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    return True


def _has_ref(node: object) -> bool:
    """Whether a ``$ref`` (one that closes a cycle) is left anywhere in ``node``."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Mapping):
            if "$ref" in current:
                return True
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


def _operations(channels: object, path: _Path) -> Iterator[tuple[_Path, str, Mapping[str, Any]]]:
    """(path, channel name, operation) of every operation of ``channels``."""
    for channel_path, channel in _children(channels, path):
        for kind in _OPERATION_KINDS:
            for operation_path, operation in _child(channel, kind, channel_path):
                yield operation_path, str(channel_path[-1]), operation


def _all_operations(
    data: Mapping[str, Any],
) -> Iterator[tuple[_Path, str, Mapping[str, Any]]]:
    yield from _operations(data.get("channels"), ("channels",))
    yield from _operations(_get(data.get("components"), "channels"), ("components", "channels"))


def _operation_messages(
    operation: Mapping[str, Any], path: _Path
) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """An operation's messages: the ``oneOf`` items, else the message itself."""
    for message_path, message in _child(operation, "message", path):
        one_of = message.get("oneOf")
        if isinstance(one_of, list):
            yield from _children(one_of, (*message_path, "oneOf"))
        else:
            yield message_path, message


def _describe_operation(path: _Path) -> str:
    return f"the {path[-1]} operation of channel {json_excerpt(path[-2])}"


def _template_names(template: str) -> list[str]:
    return list(dict.fromkeys(_TEMPLATE.findall(template)))


# --- servers and security -------------------------------------------------------------------


def _server_security(data: Mapping[str, Any]) -> Iterator[Problem]:
    for server_path, server in _children(data.get("servers"), ("servers",)):
        owner = f"server {json_excerpt(server_path[-1])}"
        security = server.get("security")
        if isinstance(security, list):
            for index, requirement in enumerate(security):
                yield from _security_requirement(
                    data, requirement, (*server_path, "security", index), owner, _SERVER_SECURITY
                )


def _operation_security(data: Mapping[str, Any]) -> Iterator[Problem]:
    for operation_path, _, operation in _operations(data.get("channels"), ("channels",)):
        security = operation.get("security")
        if isinstance(security, list):
            owner = _describe_operation(operation_path)
            for index, requirement in enumerate(security):
                yield from _security_requirement(
                    data,
                    requirement,
                    (*operation_path, "security", index),
                    owner,
                    _OPERATION_SECURITY,
                )


def _security_requirement(
    data: Mapping[str, Any], requirement: object, path: _Path, owner: str, rule: str
) -> Iterator[Problem]:
    if not isinstance(requirement, Mapping) or not all(
        isinstance(scopes, list) and all(isinstance(scope, str) for scope in scopes)
        for scopes in requirement.values()
    ):
        return
    schemes = _get(data.get("components"), "securitySchemes")
    if not isinstance(schemes, Mapping):
        schemes = {}
    for name, scopes in requirement.items():
        if name not in schemes:
            yield _problem(
                (*path, name),
                rule,
                f"{owner} requires security scheme {json_excerpt(name)}, which is not defined in "
                "components.securitySchemes",
            )
        scheme = schemes.get(name)
        if _get(scheme, "type") != "oauth2":
            continue
        available = _oauth2_scopes(_get(scheme, "flows"))
        for index, scope in enumerate(scopes):
            if scope not in available:
                yield _problem(
                    (*path, name, index),
                    rule,
                    f"{owner} requires scope {json_excerpt(scope)} of security scheme "
                    f"{json_excerpt(name)}, "
                    f"which no flow of it defines (defined: {json_excerpt(available)})",
                )


def _oauth2_scopes(flows: object) -> list[str]:
    scopes: dict[str, None] = {}
    for flow in _OAUTH2_FLOWS:
        flow_scopes = _get(_get(flows, flow), "scopes")
        if isinstance(flow_scopes, Mapping):
            scopes.update(dict.fromkeys(str(scope) for scope in flow_scopes))
    return list(scopes)


def _server_variables(data: Mapping[str, Any]) -> Iterator[Problem]:
    servers = (
        *_children(data.get("servers"), ("servers",)),
        *_children(_get(data.get("components"), "servers"), ("components", "servers")),
    )
    for server_path, server in servers:
        url, variables = server.get("url"), server.get("variables")
        if not isinstance(url, str) or not isinstance(variables, Mapping):
            continue
        used = _template_names(url)
        if not used:
            continue
        name = server_path[-1]
        for missing in (variable for variable in used if variable not in variables):
            yield _problem(
                (*server_path, "variables"),
                _SERVER_VARIABLES,
                f"server {json_excerpt(name)} has no variable {json_excerpt(missing)} for its url "
                f"{json_excerpt(url)}",
            )
        for extra in (variable for variable in variables if variable not in used):
            yield _problem(
                (*server_path, "variables", str(extra)),
                _SERVER_VARIABLES,
                f"server {json_excerpt(name)} defines variable {json_excerpt(extra)}, which its "
                f"url {json_excerpt(url)} does not use",
            )


# --- channels -------------------------------------------------------------------------------


def _channel_parameters(data: Mapping[str, Any]) -> Iterator[Problem]:
    for channel_path, channel in _children(data.get("channels"), ("channels",)):
        parameters = channel.get("parameters")
        if not isinstance(parameters, Mapping):
            continue
        name = str(channel_path[-1])
        used = _template_names(name)
        if not used:
            continue
        for missing in (parameter for parameter in used if parameter not in parameters):
            yield _problem(
                (*channel_path, "parameters"),
                _CHANNEL_PARAMETERS,
                f"channel {json_excerpt(name)} has no parameter definition for "
                f"{json_excerpt(missing)}",
            )
        for extra in (parameter for parameter in parameters if parameter not in used):
            yield _problem(
                (*channel_path, "parameters", str(extra)),
                _CHANNEL_PARAMETERS,
                f"channel {json_excerpt(name)} defines parameter {json_excerpt(extra)}, which its "
                "name does not use",
            )


def _channel_servers(data: Mapping[str, Any]) -> Iterator[Problem]:
    servers = data.get("servers", {})
    channels = data.get("channels", {})
    # The official rule checks nothing at all when any channel's shape is off.
    if not isinstance(servers, Mapping) or not isinstance(channels, Mapping):
        return
    for channel in channels.values():
        if not isinstance(channel, Mapping):
            return
        names = channel.get("servers", [])
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return
    for channel_name, channel in channels.items():
        for index, server in enumerate(channel.get("servers", [])):
            if server not in servers:
                yield _problem(
                    ("channels", channel_name, "servers", index),
                    _CHANNEL_SERVERS,
                    f"channel {json_excerpt(channel_name)} names server {json_excerpt(server)}, "
                    "which is not defined in servers",
                )


def _channel_names(data: Mapping[str, Any]) -> Iterator[Problem]:
    channels = data.get("channels")
    if not isinstance(channels, Mapping):
        return
    for name in channels:
        if "?" in str(name) or "#" in str(name):
            yield _problem(
                ("channels", name),
                _CHANNEL_NAME,
                f"channel {json_excerpt(name)} contains a query ('?') or fragment ('#') delimiter",
            )


# --- ids and tags ---------------------------------------------------------------------------


def _effective_id(node: Mapping[str, Any], field: str) -> tuple[str, _Path] | None:
    """The id a node ends up with once its traits are applied, and where it comes from."""
    traits = node.get("traits")
    if isinstance(traits, list):
        for index in range(len(traits) - 1, -1, -1):
            value = _get(traits[index], field)
            if isinstance(value, str):
                return value, ("traits", index, field)
    value = node.get(field)
    return (value, (field,)) if isinstance(value, str) else None


def _operation_ids(data: Mapping[str, Any]) -> Iterator[Problem]:
    first_user: dict[str, str] = {}
    for operation_path, _, operation in _operations(data.get("channels"), ("channels",)):
        found = _effective_id(operation, "operationId")
        if found is None:
            continue
        operation_id, id_path = found
        if operation_id in first_user:
            yield _problem(
                (*operation_path, *id_path),
                _OPERATION_ID,
                f"operationId {json_excerpt(operation_id)} of "
                f"{_describe_operation(operation_path)} is already the operationId of "
                f"{first_user[operation_id]}",
            )
        else:
            first_user[operation_id] = _describe_operation(operation_path)


def _message_ids(data: Mapping[str, Any]) -> Iterator[Problem]:
    first_user: dict[str, str] = {}
    for operation_path, _, operation in _operations(data.get("channels"), ("channels",)):
        for message_path, message in _operation_messages(operation, operation_path):
            found = _effective_id(message, "messageId")
            if found is None:
                continue
            message_id, id_path = found
            where = f"a message of {_describe_operation(operation_path)}"
            if message_id in first_user:
                yield _problem(
                    (*message_path, *id_path),
                    _MESSAGE_ID,
                    f"messageId {json_excerpt(message_id)} of {where} is already the messageId of "
                    f"{first_user[message_id]}",
                )
            else:
                first_user[message_id] = where


def _tag_lists(data: Mapping[str, Any]) -> Iterator[tuple[_Path, object]]:
    yield ("tags",), data.get("tags")
    components = data.get("components")
    for operation_path, _, operation in _all_operations(data):
        yield (*operation_path, "tags"), operation.get("tags")
        for trait_path, trait in _children(operation.get("traits"), (*operation_path, "traits")):
            yield (*trait_path, "tags"), trait.get("tags")
        for message_path, message in _child(operation, "message", operation_path):
            messages = [(message_path, message)]
            messages.extend(_children(message.get("oneOf"), (*message_path, "oneOf")))
            for path, node in messages:
                yield (*path, "tags"), node.get("tags")
                for trait_path, trait in _children(node.get("traits"), (*path, "traits")):
                    yield (*trait_path, "tags"), trait.get("tags")
    for trait_path, trait in _children(
        _get(components, "operationTraits"), ("components", "operationTraits")
    ):
        yield (*trait_path, "tags"), trait.get("tags")
    for message_path, message in _children(
        _get(components, "messages"), ("components", "messages")
    ):
        yield (*message_path, "tags"), message.get("tags")
        for trait_path, trait in _children(message.get("traits"), (*message_path, "traits")):
            yield (*trait_path, "tags"), trait.get("tags")
    for trait_path, trait in _children(
        _get(components, "messageTraits"), ("components", "messageTraits")
    ):
        yield (*trait_path, "tags"), trait.get("tags")


def _tags(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, tags in _tag_lists(data):
        if not isinstance(tags, list) or not all(
            isinstance(tag, Mapping) and isinstance(tag.get("name"), str) for tag in tags
        ):
            continue
        seen: set[str] = set()
        for index, tag in enumerate(tags):
            name = tag["name"]
            if name in seen:
                yield _problem(
                    (*path, index, "name"),
                    _TAGS,
                    f"tag name {json_excerpt(name)} appears more than once in {pointer_to(*path)}",
                )
            seen.add(name)


# --- schemas and examples -------------------------------------------------------------------


def _validate(instance: object, schema: object, path: _Path, rule: str) -> list[Problem]:
    if _has_ref(schema):
        return []
    return validate_instance(instance, schema, pointer=pointer_to(*path), rule=rule)


def _messages(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """The messages of every operation (each ``oneOf`` item too), then ``components.messages``."""
    for operation_path, _, operation in _all_operations(data):
        for message_path, message in _child(operation, "message", operation_path):
            yield message_path, message
            yield from _children(message.get("oneOf"), (*message_path, "oneOf"))
    yield from _children(_get(data.get("components"), "messages"), ("components", "messages"))


def _message_like(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """Every message, each followed by its traits, then ``components.messageTraits``."""
    for path, message in _messages(data):
        yield path, message
        yield from _children(message.get("traits"), (*path, "traits"))
    components = data.get("components")
    yield from _children(_get(components, "messageTraits"), ("components", "messageTraits"))


def _message_examples(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, message in _message_like(data):
        if not all(
            isinstance(message.get(key, ""), str) for key in ("name", "summary")
        ) or not _js_truthy(message.get("examples")):
            continue
        examples = message.get("examples")
        if not isinstance(examples, list):
            continue
        if "schemaFormat" in message:
            yield from _custom_format_examples(message, examples, path)
            continue
        payload = _example_schema(message.get("payload"), {})
        headers = _example_schema(message.get("headers"), {"type": "object"})
        for index, example in enumerate(examples):
            if not isinstance(example, Mapping):
                continue
            for part, schema in (("payload", payload), ("headers", headers)):
                if part in example:
                    yield from _validate(
                        example[part], schema, (*path, "examples", index, part), _MESSAGE_EXAMPLES
                    )


def _custom_format_examples(
    message: Mapping[str, Any], examples: Sequence[object], path: _Path
) -> Iterator[Problem]:
    """Example payloads of a message with a ``schemaFormat``, checked against the raw payload."""
    payload = message.get("payload")
    if not _js_truthy(payload):
        return
    for index, example in enumerate(examples):
        if isinstance(example, Mapping) and "payload" in example:
            yield from _validate(
                example["payload"],
                payload,
                (*path, "examples", index, "payload"),
                _MESSAGE_EXAMPLES_CUSTOM,
            )


def _example_schema(schema: object, fallback: Mapping[str, Any]) -> object:
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    return schema if _js_truthy(schema) else fallback


def _payload_schemas(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, message in _messages(data):
        if "schemaFormat" not in message:
            # Every 2.x schema already checks such a payload as a Schema Object.
            continue
        schema_format = message["schemaFormat"]
        payload = message.get("payload")
        if not isinstance(schema_format, str) or not _js_truthy(payload):
            continue
        # An unknown format only draws a warning from the official parser.
        if schema_format in _ASYNCAPI_SCHEMA_FORMATS:
            yield from validate_instance(
                payload, _SCHEMA_OBJECT, pointer=pointer_to(*path, "payload"), rule=_SCHEMAS
            )


def _schemas_with_values(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """The schemas whose top-level ``default`` and ``examples`` the official parser checks."""
    components = data.get("components")
    for operation_path, _, operation in _all_operations(data):
        message = operation.get("message")
        if isinstance(message, Mapping) and "schemaFormat" not in message:
            yield from _child(message, "payload", (*operation_path, "message"))
    for base in (("channels",), ("components", "channels")):
        channels = data.get("channels") if len(base) == 1 else _get(components, "channels")
        for channel_path, channel in _children(channels, base):
            for parameter_path, parameter in _children(
                channel.get("parameters"), (*channel_path, "parameters")
            ):
                yield from _child(parameter, "schema", parameter_path)
    yield from _children(_get(components, "schemas"), ("components", "schemas"))
    for parameter_path, parameter in _children(
        _get(components, "parameters"), ("components", "parameters")
    ):
        yield from _child(parameter, "schema", parameter_path)
    for kind in ("messages", "messageTraits"):
        for message_path, message in _children(_get(components, kind), ("components", kind)):
            if "schemaFormat" not in message:
                yield from _child(message, "payload", message_path)


def _bad_examples(schema: Mapping[str, Any], path: _Path, rule: str) -> Problem | None:
    if "examples" in schema and not isinstance(schema["examples"], list):
        return _problem((*path, "examples"), rule, "'examples' of a schema must be an array")
    return None


def _schema_defaults(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, schema in _schemas_with_values(data):
        if "default" not in schema:
            continue
        bad = _bad_examples(schema, path, _SCHEMA_DEFAULT)
        if bad is not None:
            yield bad
        elif not isinstance(schema["default"], str):  # the official parser skips strings
            yield from _validate(schema["default"], schema, (*path, "default"), _SCHEMA_DEFAULT)


def _schema_examples(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, schema in _schemas_with_values(data):
        if "examples" not in schema:
            continue
        bad = _bad_examples(schema, path, _SCHEMA_EXAMPLES)
        if bad is not None:
            yield bad
            continue
        for index, example in enumerate(schema["examples"]):
            if not isinstance(example, str):  # the official parser skips strings
                yield from _validate(example, schema, (*path, "examples", index), _SCHEMA_EXAMPLES)


# --- the specification's own rules (warnings) -----------------------------------------------


def _component_keys(data: Mapping[str, Any]) -> Iterator[Problem]:
    components = data.get("components")
    for field in _COMPONENT_MAPS:
        members = _get(components, field)
        if not isinstance(members, Mapping):
            continue
        for key in members:
            if _COMPONENT_KEY.fullmatch(str(key)):
                continue
            unchecked = (
                "; the official schema does not check its value either"
                if field in _PATTERN_ONLY_MAPS
                else ""
            )
            yield _warning(
                ("components", field, str(key)),
                _COMPONENTS_KEYS,
                f"component name {json_excerpt(key)} in components.{field} does not match "
                f"^[a-zA-Z0-9\\.\\-_]+$, as the specification requires{unchecked}",
            )


def _server_names(data: Mapping[str, Any]) -> Iterator[Problem]:
    servers = data.get("servers")
    if not isinstance(servers, Mapping):
        return
    for name in servers:
        if not _SERVER_NAME.fullmatch(str(name)):
            yield _warning(
                ("servers", str(name)),
                _SERVER_NAMES,
                f"server name {json_excerpt(name)} does not match ^[A-Za-z0-9_\\-]+$, as the "
                "specification requires",
            )


def _security_lists(data: Mapping[str, Any]) -> Iterator[tuple[_Path, object]]:
    """Every list of Security Requirement Objects: of servers, operations, operation traits."""
    components = data.get("components")
    for base, servers in (
        (("servers",), data.get("servers")),
        (("components", "servers"), _get(components, "servers")),
    ):
        for server_path, server in _children(servers, base):
            yield (*server_path, "security"), server.get("security")
    for operation_path, _, operation in _all_operations(data):
        yield (*operation_path, "security"), operation.get("security")
        for trait_path, trait in _children(operation.get("traits"), (*operation_path, "traits")):
            yield (*trait_path, "security"), trait.get("security")
    for trait_path, trait in _children(
        _get(components, "operationTraits"), ("components", "operationTraits")
    ):
        yield (*trait_path, "security"), trait.get("security")


def _security_scopes(data: Mapping[str, Any]) -> Iterator[Problem]:
    schemes = _get(data.get("components"), "securitySchemes")
    for list_path, requirements in _security_lists(data):
        for requirement_path, requirement in _children(requirements, list_path):
            for name, scopes in requirement.items():
                kind = _get(_get(schemes, str(name)), "type")
                if isinstance(kind, str) and kind not in _SCOPED_SCHEME_TYPES and scopes:
                    yield _warning(
                        (*requirement_path, str(name)),
                        _SECURITY_SCOPES,
                        f"security scheme {json_excerpt(name)} is of type {json_excerpt(kind)}: "
                        "only oauth2 "
                        f"and openIdConnect requirements list scopes, this one lists "
                        f"{json_excerpt(scopes)}; the specification requires an empty array",
                    )


def _schema_roots(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """Every AsyncAPI Schema Object that is not inside another one."""
    components = data.get("components")
    seen: set[int] = set()  # a shared message (a resolved $ref) holds the same schemas
    for path, message in _message_like(data):
        if id(message) in seen:
            continue
        seen.add(id(message))
        yield from _child(message, "headers", path)
        schema_format = message.get("schemaFormat")
        if schema_format is None or (
            isinstance(schema_format, str) and schema_format in _ASYNCAPI_SCHEMA_FORMATS
        ):
            yield from _child(message, "payload", path)
    parameter_maps = [
        ((*channel_path, "parameters"), channel.get("parameters"))
        for base, channels in (
            (("channels",), data.get("channels")),
            (("components", "channels"), _get(components, "channels")),
        )
        for channel_path, channel in _children(channels, base)
    ]
    parameter_maps.append((("components", "parameters"), _get(components, "parameters")))
    for base, parameters in parameter_maps:
        for parameter_path, parameter in _children(parameters, base):
            yield from _child(parameter, "schema", parameter_path)
    yield from _children(_get(components, "schemas"), ("components", "schemas"))


def _schemas(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """Every Schema Object, nested ones too, once each (the first place it is met)."""
    seen: set[int] = set()
    pending = list(_schema_roots(data))[::-1]
    while pending:
        path, schema = pending.pop()
        if id(schema) in seen:
            continue
        seen.add(id(schema))
        yield path, schema
        inner: list[tuple[_Path, Mapping[str, Any]]] = []
        for keyword in _SUBSCHEMA:
            inner.extend(_child(schema, keyword, path))
        for keyword in _SUBSCHEMA_MAPS:
            inner.extend(_children(schema.get(keyword), (*path, keyword)))
        for keyword in _SUBSCHEMA_LISTS:
            if isinstance(schema.get(keyword), list):
                inner.extend(_children(schema[keyword], (*path, keyword)))
        pending.extend(reversed(inner))


def _discriminators(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, schema in _schemas(data):
        name = schema.get("discriminator")
        if not isinstance(name, str):
            continue
        where = (*path, "discriminator")
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or name not in properties:
            yield _warning(
                where,
                _DISCRIMINATOR,
                f"discriminator {json_excerpt(name)} is not a property of this schema; the "
                "specification requires it in the schema's properties",
            )
        required = schema.get("required")
        if not isinstance(required, list) or name not in required:
            yield _warning(
                where,
                _DISCRIMINATOR,
                f"discriminator {json_excerpt(name)} is not in this schema's required list; the "
                "specification requires it there",
            )


def _message_traits(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    for path, message in _messages(data):
        yield from _children(message.get("traits"), (*path, "traits"))
    components = data.get("components")
    yield from _children(_get(components, "messageTraits"), ("components", "messageTraits"))


def _trait_examples(data: Mapping[str, Any]) -> Iterator[Problem]:
    """A message trait's examples become its message's: they take a message example's shape."""
    version = data.get("asyncapi")
    if version in _SHAPED_TRAIT_EXAMPLES:
        return
    fields = _EXAMPLE_FIELDS_2_0 if version == "2.0.0" else _EXAMPLE_FIELDS
    seen: set[int] = set()
    for trait_path, trait in _message_traits(data):
        if id(trait) in seen:
            continue
        seen.add(id(trait))
        for path, example in _children(trait.get("examples"), (*trait_path, "examples")):
            for key in example:
                if key not in fields:
                    yield _warning(
                        (*path, str(key)),
                        _TRAIT_EXAMPLES,
                        f"{json_excerpt(key)} is not a field of a message example in AsyncAPI "
                        f"{version} "
                        f"(fields: {', '.join(fields)})",
                    )
            if fields is _EXAMPLE_FIELDS_2_0:
                continue
            if "headers" not in example and "payload" not in example:
                yield _warning(
                    path,
                    _TRAIT_EXAMPLES,
                    "a message example holds headers, a payload or both; this one has neither",
                )
            for key in ("name", "summary"):
                if key in example and not isinstance(example[key], str):
                    yield _warning(
                        (*path, key),
                        _TRAIT_EXAMPLES,
                        f"the {key} of a message example is a string, not "
                        f"{json_excerpt(example[key])}",
                    )
