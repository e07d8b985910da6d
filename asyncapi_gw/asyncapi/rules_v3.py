"""The semantic rules of AsyncAPI 3.x documents, applied after schema validation.

Errors: the ``error`` rules of the v3 ruleset of ``@asyncapi/parser`` (v3), under its names and
with its verdicts, quirks included, so that a document it accepts is accepted here and the other
way round.  Three of them read the document as written (the root file, ``$ref`` not followed),
as the official parser does: :func:`check_written`; the others read the resolved document:
:func:`check_rules`.

============================================== ==============================================
asyncapi3-operation-messages-from-referred-    the ``$ref`` of an operation's ``messages``
channel                                        start with its channel's ``$ref`` +
                                               ``/messages`` (operations under ``operations``
                                               and ``components.operations``)
asyncapi3-required-operation-channel-          the channel ``$ref`` of an operation under
unambiguity                                    ``operations`` contains ``#/channels/``
asyncapi3-required-channel-servers-            the server ``$ref`` of a channel under
unambiguity                                    ``channels`` contain ``#/servers/``
asyncapi3-channel-servers                      a channel's ``servers`` are defined in
                                               ``servers`` (checked only when every channel
                                               lists server names, as the official rule)
asyncapi3-channel-no-query-nor-fragment        no ``?`` or ``#`` in a key of ``channels``
asyncapi3-channel-parameters                   the ``{param}`` of a channel's ``address`` and
                                               its ``parameters`` match, both ways
============================================== ==============================================

The official parser's quirks kept: the messages and channel-servers rules skip an object whose
``$ref`` values are not all RFC 3986 URI references (``#/channels/rooms~1{id}`` is not one:
braces are not allowed), and an operation whose channel is written inline has no messages that
belong to it; a channel with an empty ``parameters`` object misses every parameter of its
address, and one without an address has only redundant ones.

Warnings: what the 3.x specification requires but the official parser does not check (yet),
and the 2.x ruleset did.  They are warnings so that a document the official parser accepts is
still valid here; ``validate`` prints them.

============================================== ==============================================
asyncapi3-server-variables                     the ``{var}`` of a server's ``host`` and
                                               ``pathname`` and its ``variables`` match, both
                                               ways
asyncapi3-security-scopes                      the ``scopes`` an ``oauth2`` security scheme
                                               requires are ``availableScopes`` of one of its
                                               flows
asyncapi3-tags-uniqueness                      no tag name twice in one ``tags`` list
asyncapi3-message-examples                     a message's examples match its ``payload`` and
                                               ``headers`` (a schema in a format other than
                                               AsyncAPI or JSON Schema is not checked;
                                               traits are not applied)
asyncapi3-reply-address                        a reply with an ``address`` uses a channel whose
                                               ``address`` is null or absent
asyncapi3-reply-messages-from-referred-channel as the official rule for operations, for the
                                               ``messages`` of a reply and its ``channel``
============================================== ==============================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from asyncapi_gw.asyncapi.rules import (
    _ASYNCAPI_SCHEMA_FORMATS,
    _channel_names,
    _channel_servers,
    _child,
    _children,
    _example_schema,
    _get,
    _js_truthy,
    _Path,
    _problem,
    _validate,
)
from asyncapi_gw.errors import Problem, Severity, json_excerpt
from asyncapi_gw.pointers import pointer_to
from asyncapi_gw.schema import is_uri_reference

__all__ = ["ERROR_RULES", "WARNING_RULES", "check_rules", "check_written"]

_MESSAGES_FROM_CHANNEL = "asyncapi3-operation-messages-from-referred-channel"
_OPERATION_CHANNEL = "asyncapi3-required-operation-channel-unambiguity"
_CHANNEL_SERVER_REFS = "asyncapi3-required-channel-servers-unambiguity"
_CHANNEL_SERVERS = "asyncapi3-channel-servers"
_CHANNEL_NAME = "asyncapi3-channel-no-query-nor-fragment"
_CHANNEL_PARAMETERS = "asyncapi3-channel-parameters"
_SERVER_VARIABLES = "asyncapi3-server-variables"
_SECURITY_SCOPES = "asyncapi3-security-scopes"
_TAGS = "asyncapi3-tags-uniqueness"
_MESSAGE_EXAMPLES = "asyncapi3-message-examples"
_REPLY_ADDRESS = "asyncapi3-reply-address"
_REPLY_MESSAGES = "asyncapi3-reply-messages-from-referred-channel"

ERROR_RULES: tuple[str, ...] = (
    _MESSAGES_FROM_CHANNEL,
    _OPERATION_CHANNEL,
    _CHANNEL_SERVER_REFS,
    _CHANNEL_SERVERS,
    _CHANNEL_NAME,
    _CHANNEL_PARAMETERS,
)
WARNING_RULES: tuple[str, ...] = (
    _SERVER_VARIABLES,
    _SECURITY_SCOPES,
    _TAGS,
    _MESSAGE_EXAMPLES,
    _REPLY_ADDRESS,
    _REPLY_MESSAGES,
)

# The JavaScript pattern /{(.+?)}/g of the official parser.
_TEMPLATE = re.compile(r"\{(.+?)\}")
_OAUTH2_FLOWS = ("implicit", "password", "clientCredentials", "authorizationCode")
_Check = Callable[[Mapping[str, Any]], Iterator[Problem]]


def check_rules(data: Mapping[str, Any]) -> list[Problem]:
    """The problems of ``data``, an AsyncAPI 3.x document with its ``$ref`` resolved: the
    official rules' errors, then the warnings."""
    if not isinstance(data, Mapping):
        return []
    errors: tuple[_Check, ...] = (_channel_servers_v3, _channel_names_v3, _channel_parameters)
    warnings: tuple[_Check, ...] = (
        _server_variables,
        _security_scopes,
        _tags,
        _message_examples,
        _reply_addresses,
    )
    return [problem for check in errors for problem in check(data)] + [
        _warning(problem) for check in warnings for problem in check(data)
    ]


def check_written(source: Mapping[str, Any]) -> list[Problem]:
    """The problems the rules find in ``source``, the root file of an AsyncAPI 3.x document as
    written (``$ref`` not followed): their pointers are pointers into ``source``."""
    if not isinstance(source, Mapping):
        return []
    errors: tuple[_Check, ...] = (_operation_messages, _operation_channels, _channel_server_refs)
    return [problem for check in errors for problem in check(source)] + [
        _warning(problem) for problem in _reply_messages(source)
    ]


def _warning(problem: Problem) -> Problem:
    return attrs.evolve(problem, severity=Severity.WARNING)


# --- walking --------------------------------------------------------------------------------


def _operations(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    yield from _children(data.get("operations"), ("operations",))
    yield from _children(_get(data.get("components"), "operations"), ("components", "operations"))


def _channels(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    yield from _children(data.get("channels"), ("channels",))
    yield from _children(_get(data.get("components"), "channels"), ("components", "channels"))


def _replies(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    for operation_path, operation in _operations(data):
        yield from _child(operation, "reply", operation_path)
    yield from _children(_get(data.get("components"), "replies"), ("components", "replies"))


def _once(
    found: Iterator[tuple[_Path, Mapping[str, Any]]],
) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """Each node once: a resolved document shares the node of every ``$ref`` to it."""
    seen: set[int] = set()
    for path, node in found:
        if id(node) not in seen:
            seen.add(id(node))
            yield path, node


def _messages(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """Every message of a resolved document, once: those of ``components`` first, where the
    messages that channels and operations reference are usually written."""

    def found() -> Iterator[tuple[_Path, Mapping[str, Any]]]:
        yield from _children(_get(data.get("components"), "messages"), ("components", "messages"))
        for channel_path, channel in _channels(data):
            yield from _children(channel.get("messages"), (*channel_path, "messages"))
        for operation_path, operation in _operations(data):
            yield from _children(operation.get("messages"), (*operation_path, "messages"))
        for reply_path, reply in _replies(data):
            yield from _children(reply.get("messages"), (*reply_path, "messages"))

    return _once(found())


def _template_names(template: str) -> list[str]:
    """The names between braces, repeats included, as the official parser lists them."""
    return _TEMPLATE.findall(template)


def _is_reference(node: object) -> bool:
    """Whether ``node`` passes the official rules' input check of a Reference Object: an object
    whose ``$ref``, if any, is a string and an RFC 3986 URI reference."""
    if not isinstance(node, Mapping):
        return False
    ref = node.get("$ref")
    return ref is None or (isinstance(ref, str) and is_uri_reference(ref))


def _has_string_ref(node: object) -> bool:
    return isinstance(node, Mapping) and isinstance(node.get("$ref", ""), str)


# --- the official rules, on the document as written ------------------------------------------


def _messages_outside(
    node: Mapping[str, Any], path: _Path, rule: str, owner: str, *, official: bool
) -> Iterator[Problem]:
    """The official ``operationMessagesUnambiguity``: each message ``$ref`` of ``node`` (an
    operation or a reply) must start with its channel's ``$ref`` followed by ``/messages``.
    ``official`` keeps its input check (:func:`_is_reference`); else any string ``$ref`` counts.
    """
    channel, messages = node.get("channel"), node.get("messages")
    is_reference = _is_reference if official else _has_string_ref
    if "channel" in node and not is_reference(channel):
        return
    if "messages" in node and not (
        isinstance(messages, list) and all(is_reference(message) for message in messages)
    ):
        return
    # An inline channel has no $ref: JavaScript writes the missing value as "undefined".
    channel_ref = _get(channel, "$ref")
    prefix = f"{'undefined' if channel_ref is None else channel_ref}/messages"
    for index, message in enumerate(messages or ()):
        ref = message.get("$ref")
        if ref and not ref.startswith(prefix):
            where = f"its channel {channel_ref!r}" if channel_ref else "its channel, written inline"
            yield _problem(
                (*path, "messages", index),
                rule,
                f"message {ref!r} of {owner} is not one of the messages of {where} (a $ref "
                f"starting with '{prefix}')",
            )


def _operation_messages(source: Mapping[str, Any]) -> Iterator[Problem]:
    for path, operation in _operations(source):
        yield from _messages_outside(
            operation, path, _MESSAGES_FROM_CHANNEL, f"operation '{path[-1]}'", official=True
        )


def _operation_channels(source: Mapping[str, Any]) -> Iterator[Problem]:
    for path, operation in _children(source.get("operations"), ("operations",)):
        ref = _get(operation.get("channel"), "$ref")
        if isinstance(ref, str) and "#/channels/" not in ref:
            yield _problem(
                (*path, "channel", "$ref"),
                _OPERATION_CHANNEL,
                f"operation '{path[-1]}' uses channel {ref!r}: an operation under 'operations' "
                "must reference a channel under the root 'channels' (#/channels/...)",
            )


def _channel_server_refs(source: Mapping[str, Any]) -> Iterator[Problem]:
    for path, channel in _children(source.get("channels"), ("channels",)):
        servers = channel.get("servers")
        items = (
            servers.items()
            if isinstance(servers, Mapping)
            else enumerate(servers if isinstance(servers, list) else ())
        )
        for key, server in items:
            ref = _get(server, "$ref")
            if isinstance(ref, str) and "#/servers/" not in ref:
                yield _problem(
                    (*path, "servers", key, "$ref"),
                    _CHANNEL_SERVER_REFS,
                    f"channel '{path[-1]}' uses server {ref!r}: a channel under 'channels' must "
                    "reference servers under the root 'servers' (#/servers/...)",
                )


# --- the official rules, on the resolved document --------------------------------------------


def _channel_servers_v3(data: Mapping[str, Any]) -> Iterator[Problem]:
    # The official v3 ruleset uses the v2 function itself: the same check, another name.
    for problem in _channel_servers(data):
        yield attrs.evolve(problem, rule=_CHANNEL_SERVERS)


def _channel_names_v3(data: Mapping[str, Any]) -> Iterator[Problem]:
    for problem in _channel_names(data):
        yield attrs.evolve(problem, rule=_CHANNEL_NAME)


def _channel_parameters(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, channel in _channels(data):
        address, parameters = channel.get("address"), channel.get("parameters")
        if not isinstance(parameters, Mapping) or not (address is None or isinstance(address, str)):
            continue
        used = _template_names(address or "")
        missing = [name for name in used if name not in parameters] if parameters else used
        if missing:
            yield _problem(
                (*path, "parameters"),
                _CHANNEL_PARAMETERS,
                f"channel '{path[-1]}' has no parameter definition for "
                f"{', '.join(repr(name) for name in missing)} of its address "
                f"{json_excerpt(address)}",
            )
        for extra in (name for name in parameters if name not in used):
            yield _problem(
                (*path, "parameters", str(extra)),
                _CHANNEL_PARAMETERS,
                f"channel '{path[-1]}' defines parameter '{extra}', which its address "
                f"{json_excerpt(address)} does not use",
            )


# --- what the specification requires beyond the official rules (warnings) ------------------


def _servers(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    yield from _children(data.get("servers"), ("servers",))
    yield from _children(_get(data.get("components"), "servers"), ("components", "servers"))


def _server_variables(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, server in _once(_servers(data)):
        variables = server.get("variables")
        defined = variables if isinstance(variables, Mapping) else {}
        used: dict[str, None] = {}
        for field in ("host", "pathname"):
            template = server.get(field)
            if not isinstance(template, str):
                continue
            for name in dict.fromkeys(_template_names(template)):
                used[name] = None
                if name not in defined:
                    yield _problem(
                        (*path, field),
                        _SERVER_VARIABLES,
                        f"server '{path[-1]}' has no variable '{name}' for its {field} "
                        f"{template!r}",
                    )
        for extra in (name for name in defined if name not in used):
            yield _problem(
                (*path, "variables", str(extra)),
                _SERVER_VARIABLES,
                f"server '{path[-1]}' defines variable '{extra}', which neither its host nor its "
                "pathname uses",
            )


def _security_schemes(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    components = data.get("components")
    yield from _children(_get(components, "securitySchemes"), ("components", "securitySchemes"))
    owners = [*_servers(data), *_operations(data)]
    owners.extend(_children(_get(components, "operationTraits"), ("components", "operationTraits")))
    for operation_path, operation in _operations(data):
        owners.extend(_children(operation.get("traits"), (*operation_path, "traits")))
    for path, owner in owners:
        yield from _children(owner.get("security"), (*path, "security"))


def _security_scopes(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, scheme in _once(_security_schemes(data)):
        scopes = scheme.get("scopes")
        if scheme.get("type") != "oauth2" or not isinstance(scopes, list):
            continue
        available: dict[str, None] = {}
        for flow in _OAUTH2_FLOWS:
            flow_scopes = _get(_get(scheme.get("flows"), flow), "availableScopes")
            if isinstance(flow_scopes, Mapping):
                available.update(dict.fromkeys(str(scope) for scope in flow_scopes))
        for index, scope in enumerate(scopes):
            if isinstance(scope, str) and scope not in available:
                yield _problem(
                    (*path, "scopes", index),
                    _SECURITY_SCOPES,
                    f"security scheme {pointer_to(*path)} requires scope '{scope}', which none "
                    f"of its flows makes available ({', '.join(available) or 'none'})",
                )


def _tagged(data: Mapping[str, Any]) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """Every object of a resolved document that may have ``tags``."""
    components = data.get("components")
    yield from _child(data, "info", ())
    yield from _servers(data)
    yield from _channels(data)
    operations = list(_operations(data))
    messages = list(_messages(data))
    yield from operations
    yield from messages
    for path, node in [*operations, *messages]:
        yield from _children(node.get("traits"), (*path, "traits"))
    for kind in ("operationTraits", "messageTraits"):
        yield from _children(_get(components, kind), ("components", kind))


def _tags(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, node in _once(_tagged(data)):
        tags = node.get("tags")
        if not isinstance(tags, list):
            continue
        seen: set[str] = set()
        for index, tag in enumerate(tags):
            name = _get(tag, "name")
            if not isinstance(name, str):
                continue
            if name in seen:
                yield _problem(
                    (*path, "tags", index, "name"),
                    _TAGS,
                    f"tag name '{name}' appears more than once in {pointer_to(*path, 'tags')}",
                )
            seen.add(name)


def _example_schema_of(schema: object, fallback: Mapping[str, Any]) -> object | None:
    """The JSON Schema examples are checked against, or ``None`` when its format is neither
    AsyncAPI's nor JSON Schema's (a Multi Format Schema Object in Avro, for instance)."""
    if isinstance(schema, Mapping) and "schema" in schema:
        schema_format = schema.get("schemaFormat")
        if schema_format is not None and (
            not isinstance(schema_format, str) or schema_format not in _ASYNCAPI_SCHEMA_FORMATS
        ):
            return None  # not a format the rule knows (a schemaFormat not a string is the schema's)
        schema = schema["schema"]
    return _example_schema(schema, fallback)


def _message_examples(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, message in _messages(data):
        examples = message.get("examples")
        if not isinstance(examples, list) or not _js_truthy(examples):
            continue
        schemas = {
            "payload": _example_schema_of(message.get("payload"), {}),
            "headers": _example_schema_of(message.get("headers"), {"type": "object"}),
        }
        for index, example in enumerate(examples):
            if not isinstance(example, Mapping):
                continue
            for part, schema in schemas.items():
                if part in example and schema is not None:
                    yield from _validate(
                        example[part], schema, (*path, "examples", index, part), _MESSAGE_EXAMPLES
                    )


def _reply_addresses(data: Mapping[str, Any]) -> Iterator[Problem]:
    for path, reply in _once(_replies(data)):
        address = reply.get("address")
        channel_address = _get(reply.get("channel"), "address")
        if address is not None and isinstance(channel_address, str):
            yield _problem(
                (*path, "address"),
                _REPLY_ADDRESS,
                f"the reply at {pointer_to(*path)} has an address, so its channel's address must "
                f"be null or absent, not {channel_address!r}",
            )


def _reply_messages(source: Mapping[str, Any]) -> Iterator[Problem]:
    for path, reply in _replies(source):
        if isinstance(_get(reply.get("channel"), "$ref"), str):
            yield from _messages_outside(
                reply, path, _REPLY_MESSAGES, f"the reply at {pointer_to(*path)}", official=False
            )
