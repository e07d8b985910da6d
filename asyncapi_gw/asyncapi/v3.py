"""AsyncAPI 3.x documents <-> the streaming-API model.

Decoding reads a validated, ``$ref``-resolved 3.0 or 3.1 document into a :class:`StreamingAPI`;
encoding writes an API back out, rewriting only what differs from what the source decodes to
(as :mod:`asyncapi_gw.asyncapi.v2` does), so an unchanged API exports to equal data.  What both
families share is in :mod:`asyncapi_gw.asyncapi.codec`.

Mapping:

- endpoints: a server's ``protocol`` + ``host`` + ``pathname``, variables expanded
  (``ws``/``wss`` servers only).
- topics: a topic is a channel's ``address``.  Channels whose addresses denote one topic (several
  channels on ``/``, ``rooms`` and ``/rooms``) are one topic, their operations merged.  A channel
  whose address is ``null`` or absent (unknown until runtime) is named after its key, with a
  warning.  A channel no operation uses describes no traffic of the API: no topic, a warning.
- operations: each root operation adds its direction to its channel's topic.  Which direction
  ``send`` and ``receive`` denote is the point of view (:class:`PointOfView`): the
  specification's (``application``: ``receive`` = clients publish to the API, ``send`` = clients
  subscribe), or WSO2 API Manager 4.7's opposite one (``client``).  Without one given, a
  document whose every operation is named ``<action>_<channel address>`` (``send_/rooms``), and
  that carries another mark of WSO2 (a topic starting with ``/`` in those names, its extensions), is
  recognised as WSO2's and read its way, with a warning saying so; so is one whose every
  operation has the official converter's name, ``<channel key>.publish|subscribe``, with the
  action a conversion from the client's side gives (``publish`` written ``send``); anything
  else is read the specification's way.  An operation's ``reply`` adds the opposite direction
  to the reply's channel (to the operation's own channel when the reply names none, or only a
  runtime ``address``, with a warning).
- ``$ref`` to a channel: ``#/channels/<key>`` with ``~1`` for ``/``; WSO2's unescaped form
  (``#/channels/rooms/{id}`` for the key ``rooms/{id}``) and its form without the key's leading
  ``/`` are read too, with a warning.
- per direction: ``x-uri-mapping`` and ``x-scopes`` of the operations (WSO2's placement; merged
  operations must agree on the mapping), scopes of their ``security``, their messages (the
  operation's ``messages``, else its channel's; several become ``{"oneOf": [...]}``), summary and
  description of the first; the operation id is the first operation's key unless it is a
  generated name (``<action>_<address>`` or ``<channel key>.publish|subscribe``).
- per topic: ``x-auth-type`` and ``x-wso2-disable-security`` on the channel (channels of one
  topic must agree), description, ``bindings``, ``parameters`` (3.x parameters are strings: their
  ``enum``, ``default`` and ``examples`` become a ``type: string`` schema).
- security: the production server's ``security`` schemes, else every declared scheme; flows
  list scopes in ``availableScopes``.

New APIs and changed parts are written with generated names: channel keys are the address
without its leading ``/``; operations are ``<channel key>.publish|subscribe`` (the official
converter's names) from the application's point of view and ``<action>_<address>`` (WSO2's) from
the client's, so that WSO2's reading is recognised again on import.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs

from asyncapi_gw.asyncapi.codec import (
    DISABLE_SECURITY_EXTENSION,
    Decoder,
    auth_type,
    build_api,
    channel_opened,
    encode_info,
    encode_root_extensions,
    encode_security,
    endpoints,
    expand_variables,
    ignored_marker,
    mapping,
    production_server_name,
    security,
    set_or_drop,
    text,
    x_scopes,
)
from asyncapi_gw.errors import Problem, Severity, json_excerpt
from asyncapi_gw.model import (
    AuthType,
    Endpoint,
    Operation,
    Parameter,
    PointOfView,
    SecurityScheme,
    StreamingAPI,
    Topic,
    TopicOperation,
    thaw,
)
from asyncapi_gw.pointers import escape_token, pointer_to, unescape_token

__all__ = ["POINT_OF_VIEW_RULE", "VERSIONS", "decode", "encode", "wso2_spelled_channels"]

VERSIONS = ("3.0.0", "3.1.0")
POINT_OF_VIEW_RULE = "point-of-view"
_SCOPES = "availableScopes"  # where a 3.x oauth2 flow lists its scopes
_CHANNELS = "#/channels/"
_SCHEMES = "#/components/securitySchemes/"
# Parameter fields a 3.x document has, and the schema keywords they stand for.
_PARAMETER_FIELDS = ("enum", "default", "examples")


# --------------------------------------------------------------------------- layout


@attrs.define
class _Side:
    """One direction of a topic: the operations that give it, and the replies that do."""

    ops: list[tuple[str, Mapping[str, Any], str | None]] = attrs.Factory(list)  # key, op, channel
    replies: list[str] = attrs.Factory(list)  # keys of operations whose reply gives it
    messages: list[Mapping[str, Any]] = attrs.Factory(list)


@attrs.define
class _Group:
    """The channels of one topic (the first is its primary) and its two sides."""

    name: str
    channels: list[tuple[str | None, Mapping[str, Any]]] = attrs.Factory(list)
    sides: dict[Operation, _Side] = attrs.Factory(dict)

    def side(self, direction: Operation) -> _Side:
        return self.sides.setdefault(direction, _Side())


def _path(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def _unresolved(value: Mapping[str, Any]) -> bool:
    return isinstance(value.get("$ref"), str)


def _wso2_channel_key(ref: str, channels: Mapping[str, Any]) -> str | None:
    """The channel a broken ``#/channels/...`` reference means in WSO2's spellings: the key
    written unescaped (``rooms/{id}``), or without the leading ``/`` WSO2 strips."""
    if not ref.startswith(_CHANNELS):
        return None
    rest = unquote(ref[len(_CHANNELS) :])
    for key in (rest, unescape_token(rest), "/" + rest):
        if isinstance(channels.get(key), Mapping) and not _unresolved(channels[key]):
            return key
    return None


def wso2_spelled_channels(data: Any) -> list[str]:
    """The channels an unresolved document's operations reference in one of WSO2 API Manager's
    spellings (see :func:`_wso2_channel_key`), which only a lenient import reads so."""
    if not isinstance(data, Mapping):
        return []
    channels = mapping(data.get("channels"))
    found = []
    for op in mapping(data.get("operations")).values():
        ref = mapping(mapping(op).get("channel")).get("$ref")
        if not isinstance(ref, str) or not ref.startswith(_CHANNELS):
            continue
        rest = unquote(ref[len(_CHANNELS) :])
        key = _wso2_channel_key(ref, channels)
        if key is not None and ("/" in rest or key != unescape_token(rest)) and key not in found:
            found.append(key)
    return found


class _Layout:
    """Which channels and operations of a resolved document make each topic."""

    def __init__(self, data: Mapping[str, Any], pov: PointOfView, decoder: Decoder) -> None:
        self.decoder = decoder
        self.channels = mapping(data.get("channels"))
        self.keys = {id(c): str(k) for k, c in self.channels.items() if isinstance(c, Mapping)}
        self.groups: dict[str, _Group] = {}
        self._by_channel: dict[int, _Group] = {}
        for key, channel in self.channels.items():
            if isinstance(channel, Mapping) and not _unresolved(channel):
                self._group(str(key), channel)
            else:
                decoder.fail(
                    pointer_to("channels", key),
                    f"channel {json_excerpt(key)} could not be resolved",
                )
        for key, op in mapping(data.get("operations")).items():
            self._operation(str(key), op, pov)

    def _group(self, key: str | None, channel: Mapping[str, Any]) -> _Group:
        found = self._by_channel.get(id(channel))
        if found is not None:
            return found
        address = channel.get("address")
        name = address if isinstance(address, str) and address else key or ""
        group = self.groups.get(_path(name))
        if group is None:
            group = self.groups[_path(name)] = _Group(name=name)
        group.channels.append((key, channel))
        self._by_channel[id(channel)] = group
        return group

    def channel(self, value: Any, pointer: str) -> tuple[str | None, Mapping[str, Any]] | None:
        """The key and object of the channel an operation or reply names."""
        if not isinstance(value, Mapping):
            self.decoder.fail(pointer, "the operation names no channel")
            return None
        if not _unresolved(value):
            return self.keys.get(id(value)), value
        ref = value["$ref"]
        key = _wso2_channel_key(ref, self.channels)
        if key is None:
            self.decoder.fail(
                pointer, f"$ref {json_excerpt(ref)} leads to no channel of the document"
            )
            return None
        self.decoder.warn(
            pointer + "/$ref",
            f"$ref {json_excerpt(ref)} is WSO2 API Manager's spelling of a reference to channel "
            f"{json_excerpt(key)}, read as such (the JSON pointer is "
            f"{json_excerpt(_CHANNELS + escape_token(key))})",
        )
        return key, self.channels[key]

    def _operation(self, key: str, op: Any, pov: PointOfView) -> None:
        pointer = pointer_to("operations", key)
        if not isinstance(op, Mapping) or _unresolved(op):
            self.decoder.fail(pointer, f"operation {json_excerpt(key)} could not be resolved")
            return
        action = op.get("action")
        found = self.channel(op.get("channel"), pointer + "/channel")
        if found is None or action not in ("send", "receive"):
            return
        channel_key, channel = found
        direction = pov.operation(action)
        side = self._group(channel_key, channel).side(direction)
        side.ops.append((key, op, channel_key))
        side.messages.extend(_messages(op, channel))
        reply = op.get("reply")
        if isinstance(reply, Mapping) and not _unresolved(reply):
            self._reply(key, reply, found, direction, pointer + "/reply")

    def _reply(
        self,
        key: str,
        reply: Mapping[str, Any],
        own: tuple[str | None, Mapping[str, Any]],
        direction: Operation,
        pointer: str,
    ) -> None:
        target = own
        if reply.get("channel") is not None:
            named = self.channel(reply.get("channel"), pointer + "/channel")
            if named is None:
                return
            target = named
        messages = _messages(reply, target[1])
        address = target[1].get("address")
        if "address" in reply or not isinstance(address, str) or not address:
            target = own
            self.decoder.warn(
                pointer,
                f"operation {json_excerpt(key)} replies on an address known only at runtime; "
                "the model has no such addresses, so its replies are allowed on the operation's "
                "own topic",
            )
        opposite = Operation.SUBSCRIBE if direction is Operation.PUBLISH else Operation.PUBLISH
        side = self._group(*target).side(opposite)
        side.replies.append(key)
        side.messages.extend(messages)


def _messages(holder: Mapping[str, Any], channel: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An operation's (or reply's) messages: its own list, else all of its channel's."""
    listed = holder.get("messages")
    found = listed if isinstance(listed, list) else list(mapping(channel.get("messages")).values())
    return [m for m in found if isinstance(m, Mapping) and not _unresolved(m)]


# --------------------------------------------------------------------------- decoding


def decode(
    data: Mapping[str, Any],
    *,
    source: Mapping[str, Any] | None = None,
    context: str | None = None,
    lenient: bool = False,
    base_uri: str | None = None,
    point_of_view: PointOfView | None = None,
) -> tuple[StreamingAPI, list[Problem]]:
    """The API a resolved AsyncAPI 3.x document describes, and the problems met.

    As :func:`asyncapi_gw.asyncapi.v2.decode`; ``point_of_view`` says how to read ``send`` and
    ``receive`` (``None``: recognise WSO2's documents, else the specification's reading).  The
    reading used is the API's ``point_of_view``.
    """
    decoder = Decoder(lenient=lenient)
    pov = point_of_view or _detect(data, decoder)
    layout = _Layout(data, pov, decoder)
    return build_api(
        data,
        decoder,
        context=context,
        endpoints=endpoints(data, decoder, _server_url, "host"),
        topics=lambda: _topics(data, layout, decoder),
        security=lambda: _security(data, decoder),
        source=source,
        base_uri=base_uri,
        point_of_view=pov,
    )


def _address(op: Mapping[str, Any], channels: Mapping[str, Any]) -> str | None:
    channel = mapping(op.get("channel"))
    if _unresolved(channel):
        key = _wso2_channel_key(channel["$ref"], channels)
        channel = mapping(channels.get(key)) if key is not None else {}
    return text(channel.get("address"))


def _wso2_named(key: str, op: Mapping[str, Any], channels: Mapping[str, Any]) -> bool:
    """Whether ``key`` is the name WSO2 API Manager gives ``op``: ``<action>_<address>``."""
    address = _address(op, channels)
    return address is not None and key == f"{op.get('action')}_{address}"


_WSO2_OPERATION_FIELDS = ("x-uri-mapping", "x-scopes")
_WSO2_CHANNEL_FIELDS = ("x-auth-type", "x-wso2-disable-security")


def _wso2_marked(
    data: Mapping[str, Any], ops: Mapping[str, Mapping[str, Any]], channels: Mapping[str, Any]
) -> bool:
    """Whether a document whose operations all have WSO2's names carries something else only
    WSO2 API Manager writes: a topic starting with ``/`` in those names (its publisher starts
    every topic with one), its extensions on operations or channels, or ``x-scopes-bindings``
    in a security scheme's flow.  Names alone (``send_message`` on channel address
    ``message``) are common in documents written by hand and do not suffice."""
    if any((_address(op, channels) or "").startswith("/") for op in ops.values()):
        return True
    if any(field in op for op in ops.values() for field in _WSO2_OPERATION_FIELDS):
        return True
    if any(
        field in mapping(channel) for channel in channels.values() for field in _WSO2_CHANNEL_FIELDS
    ):
        return True
    schemes = mapping(mapping(data.get("components")).get("securitySchemes"))
    return any(
        "x-scopes-bindings" in mapping(flow)
        for scheme in schemes.values()
        for flow in mapping(mapping(scheme).get("flows")).values()
    )


def _converter_reading(
    key: str, op: Mapping[str, Any], keys: Mapping[int, str]
) -> PointOfView | None:
    """The point of view an operation named as the official converter names it,
    ``<channel key>.publish|subscribe``, was written from: the name keeps its 2.x direction,
    the action says from whose side (``publish`` written ``receive``: the application's)."""
    channel_key = keys.get(id(op.get("channel")))
    action = op.get("action")
    for kind in ("publish", "subscribe"):
        if (
            channel_key is not None
            and key == f"{channel_key}.{kind}"
            and action
            in (
                "send",
                "receive",
            )
        ):
            application = (kind == "publish") == (action == "receive")
            return PointOfView.APPLICATION if application else PointOfView.CLIENT
    return None


def _detect(data: Mapping[str, Any], decoder: Decoder) -> PointOfView:
    channels = mapping(data.get("channels"))
    keys = {id(c): str(k) for k, c in channels.items()}
    ops = {str(k): v for k, v in mapping(data.get("operations")).items() if isinstance(v, Mapping)}
    named = [key for key, op in ops.items() if _wso2_named(key, op, channels)]
    converted = {_converter_reading(key, op, keys) for key, op in ops.items()}
    if ops and converted == {PointOfView.CLIENT}:
        example = next(iter(ops))
        decoder.warn(
            "/operations",
            f"read from the client's point of view: the operations are named as the official "
            f"converter names them, after the 2.x direction ({json_excerpt(example)}), and their "
            "actions are those of a conversion from the client's side ('publish' written "
            "'send'). To "
            "read them as the AsyncAPI specification does ('receive' = clients publish), give "
            "the point of view application (CLI: --point-of-view application)",
            rule=POINT_OF_VIEW_RULE,
        )
        return PointOfView.CLIENT
    if not named:
        return PointOfView.APPLICATION
    if len(named) == len(ops) and not _wso2_marked(data, ops, channels):
        decoder.warn(
            "/operations",
            f"read from the application's point of view, as the AsyncAPI specification says "
            f"('receive' = clients publish to the API, 'send' = clients subscribe), though the "
            f"operations are named as WSO2 API Manager names them ({json_excerpt(named[0])}): "
            "nothing else in the document is WSO2's (no topic starting with '/', no x-uri-mapping, "
            "x-scopes, x-auth-type or x-scopes-bindings); if WSO2 wrote the document, give the "
            "point of view client (CLI: --point-of-view client)",
            rule=POINT_OF_VIEW_RULE,
        )
        return PointOfView.APPLICATION
    if len(named) == len(ops):
        decoder.warn(
            "/operations",
            f"read from the client's point of view, as WSO2 API Manager writes and reads "
            f"AsyncAPI 3: the operations are named as WSO2 names them ({json_excerpt(named[0])}: "
            "action, '_', channel address), and WSO2 means 'send' for what clients send to the API "
            "(publish) and 'receive' for what they receive (subscribe). To read them as the "
            "AsyncAPI specification does ('receive' = clients publish), give the point of view "
            "application (CLI: --point-of-view application)",
            rule=POINT_OF_VIEW_RULE,
        )
        return PointOfView.CLIENT
    decoder.warn(
        "/operations",
        f"read from the application's point of view, as the AsyncAPI specification says "
        f"('receive' = clients publish to the API, 'send' = clients subscribe), though "
        f"{len(named)} of {len(ops)} operations are named as WSO2 API Manager names them "
        f"({json_excerpt(named[0])}), which reads them the other way; if WSO2 wrote the "
        "document, give the point of view client (CLI: --point-of-view client)",
        rule=POINT_OF_VIEW_RULE,
    )
    return PointOfView.APPLICATION


def _server_url(server: Mapping[str, Any]) -> str:
    host = text(server.get("host"))
    if host is None:
        raise ValueError("the server has no host")
    variables = mapping(server.get("variables"))
    pathname = expand_variables(text(server.get("pathname")) or "", variables)
    if pathname and not pathname.startswith("/"):
        pathname = "/" + pathname
    return f"{server.get('protocol')}://{expand_variables(host, variables)}{pathname}"


def _security_scopes(op: Mapping[str, Any]) -> tuple[str, ...]:
    """Scopes an operation's ``security`` schemes require (their ``scopes``)."""
    schemes = op.get("security")
    if not isinstance(schemes, list):
        return ()
    return tuple(
        s for scheme in schemes for s in mapping(scheme).get("scopes") or () if isinstance(s, str)
    )


def _generated(
    key: str,
    op: Mapping[str, Any],
    channel_key: str | None,
    direction: Operation,
    channels: Mapping[str, Any],
) -> bool:
    return key == f"{channel_key}.{direction.value}" or _wso2_named(key, op, channels)


def _message(found: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    unique = list({id(m): m for m in found}.values())
    if len(unique) > 1:
        return {"oneOf": unique}
    return unique[0] if unique else None


def _side(
    direction: Operation,
    group: _Group,
    side: _Side,
    channels: Mapping[str, Any],
    decoder: Decoder,
) -> TopicOperation:
    ops = [op for _, op, _ in side.ops]
    mappings: dict[str, str] = {}
    for key, op, _ in side.ops:
        uri_mapping = text(op.get("x-uri-mapping"))
        if uri_mapping is not None:
            mappings.setdefault(uri_mapping, key)
    if len(mappings) > 1:
        (first, a), (second, b) = list(mappings.items())[:2]
        decoder.fail(
            pointer_to("operations", b, "x-uri-mapping"),
            f"operations {json_excerpt(a)} and {json_excerpt(b)} both {direction.value} on topic "
            f"{json_excerpt(group.name)} with different x-uri-mapping ({json_excerpt(first)}, "
            f"{json_excerpt(second)}); a topic has one per direction",
        )
    operation_id = None
    if side.ops:
        key, op, channel_key = side.ops[0]
        if not _generated(key, op, channel_key, direction, channels):
            operation_id = key
    return TopicOperation(
        operation=direction,
        description=next((d for op in ops if (d := text(op.get("description")))), None),
        summary=next((s for op in ops if (s := text(op.get("summary")))), None),
        operation_id=operation_id,
        uri_mapping=next(iter(mappings), None),
        scopes=tuple(
            dict.fromkeys(
                s for op in ops for s in x_scopes(op.get("x-scopes")) + _security_scopes(op)
            )
        ),
        message=_message(side.messages),
    )


def _parameter(name: str, raw: Any) -> Parameter:
    param = mapping(raw)
    schema = {"type": "string", **{k: param[k] for k in _PARAMETER_FIELDS if k in param}}
    return Parameter(name=name, description=text(param.get("description")), schema=schema)


def _topic_auth(group: _Group, decoder: Decoder) -> AuthType | None:
    stated: dict[AuthType, str] = {}
    opened = False
    for key, channel in group.channels:
        pointer = pointer_to("channels", key or group.name)
        found = auth_type(channel.get("x-auth-type"), pointer + "/x-auth-type", decoder)
        if found is not None:
            stated.setdefault(found, key or group.name)
        opened = channel_opened(channel, pointer, decoder) or opened
    if len(stated) > 1:
        (first, a), (second, b) = list(stated.items())[:2]
        decoder.fail(
            pointer_to("channels", b, "x-auth-type"),
            f"channels {json_excerpt(a)} and {json_excerpt(b)} are both topic "
            f"{json_excerpt(group.name)} but give different x-auth-type ({first.value}, "
            f"{second.value})",
        )
    found = next(iter(stated), None)
    if opened and found not in (None, AuthType.NONE):
        decoder.warn(
            pointer_to("channels", stated[found], "x-auth-type"),
            f"x-auth-type {json_excerpt(found.value)} is overridden by "
            f"{DISABLE_SECURITY_EXTENSION}: true; the topic is open",
        )
    return AuthType.NONE if opened else found


def _topic(group: _Group, channels: Mapping[str, Any], decoder: Decoder) -> Topic | None:
    first_key = group.channels[0][0] if group.channels else None
    pointer = pointer_to("channels", first_key or group.name)
    for key, channel in group.channels:
        if key is not None and not (isinstance(channel.get("address"), str) and channel["address"]):
            decoder.warn(
                pointer_to("channels", key, "address"),
                f"channel {json_excerpt(key)} has no address "
                f"({json_excerpt(channel.get('address'))}: unknown until runtime); its topic is "
                f"named after its key, {json_excerpt(key)}",
            )
    parameters: dict[str, Parameter] = {}
    for _, channel in group.channels:
        for name, raw in mapping(channel.get("parameters")).items():
            parameters.setdefault(str(name), _parameter(str(name), raw))
    sides = {
        direction: _side(direction, group, side, channels, decoder)
        for direction, side in group.sides.items()
    }
    found_auth = _topic_auth(group, decoder)
    bindings = next(
        (b for _, c in group.channels if isinstance(b := c.get("bindings"), Mapping)), {}
    )
    result: Topic | None = decoder.attempt(
        pointer,
        lambda: Topic(
            name=group.name,
            description=next(
                (d for _, c in group.channels if (d := text(c.get("description")))), None
            ),
            publish=sides.get(Operation.PUBLISH),
            subscribe=sides.get(Operation.SUBSCRIBE),
            parameters=list(parameters.values()),
            bindings=bindings,
            auth_type=found_auth,
        ),
    )
    return result


def _topics(data: Mapping[str, Any], layout: _Layout, decoder: Decoder) -> list[Topic]:
    if DISABLE_SECURITY_EXTENSION in data:
        ignored_marker(pointer_to(DISABLE_SECURITY_EXTENSION), decoder)
    for key, op in mapping(data.get("operations")).items():
        if DISABLE_SECURITY_EXTENSION in mapping(op):
            ignored_marker(pointer_to("operations", key, DISABLE_SECURITY_EXTENSION), decoder)
    topics: list[Topic] = []
    for group in layout.groups.values():
        if not group.sides:
            keys = [key for key, _ in group.channels if key is not None]
            decoder.warn(
                pointer_to("channels", keys[0]),
                f"no operation sends or receives on channel {json_excerpt(keys[0])}: it is no "
                "topic of the API",
            )
            continue
        topic = _topic(group, layout.channels, decoder)
        if topic is not None:
            topics.append(topic)
    return topics


def _security(data: Mapping[str, Any], decoder: Decoder) -> list[SecurityScheme]:
    declared = mapping(mapping(data.get("components")).get("securitySchemes"))
    servers = mapping(data.get("servers"))
    name = production_server_name(servers)
    listed = mapping(servers.get(name)).get("security") if name else None
    if not isinstance(listed, list):
        return security(
            ((str(k), mapping(v)) for k, v in declared.items()),
            decoder,
            required=False,
            scopes_key=_SCOPES,
        )
    names = {id(v): str(k) for k, v in declared.items()}
    schemes: dict[str, Mapping[str, Any]] = {}
    for index, scheme in enumerate(listed):
        if isinstance(scheme, Mapping) and not _unresolved(scheme):
            schemes.setdefault(names.get(id(scheme), f"{name}-security-{index}"), scheme)
    return security(schemes.items(), decoder, required=True, scopes_key=_SCOPES)


# --------------------------------------------------------------------------- encoding


def encode(
    api: StreamingAPI,
    *,
    version: str,
    baseline: StreamingAPI | None = None,
    resolved: Mapping[str, Any] | None = None,
    point_of_view: PointOfView | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """The AsyncAPI ``version`` (3.x) document for ``api``, and what could not be written.

    ``baseline`` is what ``api.document`` (a 3.x source) decodes to and ``resolved`` that
    source with its ``$ref`` resolved; every part of the API equal to the baseline's is written
    exactly as the source had it.  Without them (a new API, or a 2.x source) the document is
    written from the model, the source's ``info`` and root extensions kept.  ``point_of_view``
    defaults to the source's reading, else the application's; a source read the other way has
    every operation turned.  The problems are ``model-conversion`` errors naming what 3.x cannot
    express; the caller validates the result against ``version``.
    """
    pov = point_of_view or api.point_of_view or PointOfView.APPLICATION
    writer = _Writer(pov=pov)
    source = api.document
    if (
        baseline is None
        or resolved is None
        or source is None
        or not str(source.get("asyncapi", "")).startswith("3.")
    ):
        doc = _fresh(api, version)
        baseline = None
        layout: dict[str, _Group] = {}
    else:
        doc = thaw(source)
        doc["asyncapi"] = version
        layout = _Layout(
            resolved, baseline.point_of_view or PointOfView.APPLICATION, Decoder(lenient=True)
        ).groups
        if pov is not baseline.point_of_view:
            writer.turn(doc, layout)
    encode_info(doc, api, baseline)
    encode_root_extensions(doc, api, baseline)
    _encode_servers(doc, api, baseline, writer)
    writer.topics(doc, api, baseline, layout)
    encode_security(doc, api, baseline, scopes_key=_SCOPES, prune=_drop_dangling_schemes)
    if baseline is None and "components" in doc:
        doc["components"] = doc.pop("components")  # last, as the specification orders them
    return doc, writer.problems


def _fresh(api: StreamingAPI, version: str) -> dict[str, Any]:
    """A new 3.x document: from a 2.x source its ``info``, ``tags``, ``externalDocs``, ``id``,
    ``defaultContentType``, root extensions and ``components.schemas`` (which the messages may
    reference) are kept, where the official converter places them; the rest is written from
    the model."""
    source = thaw(api.document) if api.document is not None else {}
    info = dict(mapping(source.get("info")))
    for moved in ("tags", "externalDocs"):
        if moved in source:
            info[moved] = source[moved]
    doc: dict[str, Any] = {"asyncapi": version}
    if "id" in source:
        doc["id"] = source["id"]
    doc["info"] = info
    for key, value in source.items():
        if key == "defaultContentType" or key.startswith("x-"):
            doc[key] = value
    schemas = mapping(source.get("components")).get("schemas")
    if isinstance(schemas, Mapping):
        doc["components"] = {"schemas": schemas}
    return doc


def _server(endpoint: Endpoint, existing: Any, writer: _Writer, pointer: str) -> dict[str, Any]:
    server = dict(existing) if isinstance(existing, Mapping) and "$ref" not in existing else {}
    for key in ("variables", "host", "pathname", "protocol"):
        server.pop(key, None)
    parts = urlsplit(endpoint.url)
    out: dict[str, Any] = {"host": parts.netloc}
    if parts.path:
        out["pathname"] = parts.path
    if parts.query:
        writer.fail(
            pointer, f"endpoint {json_excerpt(endpoint.url)}: an AsyncAPI 3 server has no query"
        )
    out["protocol"] = "wss" if endpoint.secure else "ws"
    return {**out, **server}


def _encode_servers(
    doc: dict[str, Any], api: StreamingAPI, base: StreamingAPI | None, writer: _Writer
) -> None:
    if base is not None and (api.production_endpoint, api.sandbox_endpoint) == (
        base.production_endpoint,
        base.sandbox_endpoint,
    ):
        return
    servers = doc.setdefault("servers", {})
    production_name = (production_server_name(servers) if base else None) or "production"
    for name, endpoint, before in (
        (production_name, api.production_endpoint, base.production_endpoint if base else None),
        ("sandbox", api.sandbox_endpoint, base.sandbox_endpoint if base else None),
    ):
        if base is not None and endpoint == before:
            continue
        if endpoint is None:
            servers.pop(name, None)
        else:
            servers[name] = _server(
                endpoint, servers.get(name), writer, pointer_to("servers", name)
            )
    if base is None and api.security:
        for server in servers.values():
            server["security"] = [{"$ref": _SCHEMES + escape_token(s.name)} for s in api.security]
    if not servers:
        del doc["servers"]


def _drop_dangling_schemes(doc: dict[str, Any], known: set[str]) -> None:
    """Drop references to security schemes that are no longer declared."""

    def kept(scheme: Any) -> bool:
        ref = mapping(scheme).get("$ref")
        return not (
            isinstance(ref, str)
            and ref.startswith(_SCHEMES)
            and unescape_token(ref[len(_SCHEMES) :]) not in known
        )

    holders = [*mapping(doc.get("servers")).values(), *mapping(doc.get("operations")).values()]
    for holder in holders:
        if isinstance(holder, dict) and isinstance(holder.get("security"), list):
            holder["security"] = [s for s in holder["security"] if kept(s)]
            if not holder["security"]:
                del holder["security"]


def _free(taken: Mapping[str, Any], wanted: str) -> str:
    key, n = wanted, 1
    while key in taken:
        n += 1
        key = f"{wanted}_{n}"
    return key


def _items(message: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if message is None:
        return []
    one_of = message.get("oneOf")
    if set(message) == {"oneOf"} and isinstance(one_of, (list, tuple)):
        return [m for m in one_of if isinstance(m, Mapping)]
    return [message]


def _v3_message(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A message in 3.x form and the key to file it under: a 2.x ``messageId`` becomes the key
    and a ``schemaFormat`` other than AsyncAPI's or JSON Schema's wraps the payload."""
    message = dict(message)
    key = message.pop("messageId", None)
    schema_format = message.pop("schemaFormat", None)
    if (
        isinstance(schema_format, str)
        and "payload" in message
        and not schema_format.startswith(
            ("application/vnd.aai.asyncapi", "application/schema+json")
        )
    ):
        message["payload"] = {"schemaFormat": schema_format, "schema": message["payload"]}
    if not isinstance(key, str):
        key = message.get("name") if isinstance(message.get("name"), str) else "message"
    return key, message


@attrs.define
class _Writer:
    """Writes topics into a 3.x document from one point of view, noting what it cannot."""

    pov: PointOfView
    problems: list[Problem] = attrs.Factory(list)

    def fail(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer=pointer, message=message, rule="model-conversion"))

    def note(self, pointer: str, message: str) -> None:
        self.problems.append(
            Problem(
                pointer=pointer, message=message, rule="model-conversion", severity=Severity.WARNING
            )
        )

    def name(self, direction: Operation, topic: str, channel_key: str) -> str:
        if self.pov is PointOfView.CLIENT:
            return f"{self.pov.action(direction)}_{topic}"
        return f"{channel_key}.{direction.value}"

    # ------------------------------------------------------------- turning the point of view

    def turn(self, doc: dict[str, Any], layout: dict[str, _Group]) -> None:
        """Flip every operation's action (the API's directions stay as they are) and give each
        operation the name this point of view writes, where that name is free."""
        operations: dict[str, Any] = doc.get("operations") or {}
        renames: dict[str, str] = {}
        for group in layout.values():
            for direction, side in group.sides.items():
                for index, (key, resolved, channel_key) in enumerate(side.ops):
                    raw = operations.get(key)
                    if not isinstance(raw, dict) or "$ref" in raw:
                        raw = operations[key] = thaw(resolved)  # a shared one stays as it is
                    raw["action"] = self.pov.action(direction)
                    wanted = self.name(direction, group.name, channel_key or group.name)
                    if wanted == key:
                        continue
                    if wanted in operations or wanted in renames.values():
                        if self.pov is PointOfView.CLIENT:
                            self.note(
                                pointer_to("operations", key),
                                (
                                    f"operation {json_excerpt(key)} keeps its name "
                                    f"({json_excerpt(wanted)} is taken): importing the "
                                    "document needs the point of view client"
                                ),
                            )
                        continue
                    renames[key] = wanted
                    side.ops[index] = (wanted, resolved, channel_key)
                for index, key in enumerate(side.replies):
                    side.replies[index] = renames.get(key, key)
        _rename_operations(doc, renames)

    # ------------------------------------------------------------- topics

    def topics(
        self,
        doc: dict[str, Any],
        api: StreamingAPI,
        base: StreamingAPI | None,
        layout: dict[str, _Group],
    ) -> None:
        if base is not None and api.topics == base.topics:
            return
        doc.setdefault("channels", {})
        doc.setdefault("operations", {})
        before = {t.path: t for t in base.topics} if base else {}
        kept = {t.path for t in api.topics}
        for path, gone in layout.items():
            if path in before and path not in kept:
                self.remove(doc, gone)
        for topic in api.topics:
            old = before.get(topic.path)
            group = layout.get(topic.path)
            if old == topic:
                continue
            if old is None or group is None or not any(k for k, _ in group.channels):
                self.add(doc, topic, group)
            else:
                self.change(doc, topic, old, group)
        for key in ("channels", "operations"):
            if not doc[key]:
                del doc[key]

    def remove(self, doc: dict[str, Any], group: _Group) -> None:
        for key, _ in group.channels:
            doc["channels"].pop(key, None)
        for side in group.sides.values():
            for key, _, _ in side.ops:
                doc["operations"].pop(key, None)
            for key in side.replies:  # the replying operation may be gone with its own topic
                if isinstance(doc["operations"].get(key), dict):
                    doc["operations"][key].pop("reply", None)

    def add(self, doc: dict[str, Any], topic: Topic, group: _Group | None) -> None:
        channels = doc["channels"]
        reuse = next((k for k, _ in group.channels if k in channels), None) if group else None
        if group is None or reuse is None:
            key = _free(channels, topic.name.lstrip("/") or topic.name)
            channels[key] = {"address": topic.name}
            group = _Group(name=topic.name, channels=[(key, channels[key])])
        else:
            key = reuse
            self.writable_channel(doc, key, group)
        self.channel_fields(doc, topic, None, group)
        written = [self.new_operation(doc, topic, key, side, group) for side in topic.operations]
        self.settle_messages(doc, written)

    def change(self, doc: dict[str, Any], topic: Topic, old: Topic, group: _Group) -> None:
        key = next(k for k, _ in group.channels if k is not None)
        self.writable_channel(doc, key, group)
        self.channel_fields(doc, topic, old, group)
        if topic.name != old.name and self.pov is PointOfView.CLIENT:
            self.follow_address(doc, topic, group)
        written: list[tuple[str, str]] = []
        for direction in Operation:
            new = topic.publish if direction is Operation.PUBLISH else topic.subscribe
            prev = old.publish if direction is Operation.PUBLISH else old.subscribe
            side = group.sides.get(direction, _Side())
            if new == prev:
                continue
            if new is None:
                self.remove(doc, _Group(name=topic.name, sides={direction: side}))
            elif not side.ops:
                written.append(self.new_operation(doc, topic, key, new, group))
            else:
                written.extend(self.change_side(doc, topic, new, prev, side=side, group=group))
        self.settle_messages(doc, written)

    def follow_address(self, doc: dict[str, Any], topic: Topic, group: _Group) -> None:
        """Rename a renamed topic's operations after its new address, as WSO2 names them."""
        renames: dict[str, str] = {}
        for direction, side in group.sides.items():
            for index, (key, resolved, channel_key) in enumerate(side.ops):
                wanted = self.name(direction, topic.name, channel_key or topic.name)
                if wanted != key and wanted not in doc["operations"]:
                    renames[key] = wanted
                    side.ops[index] = (wanted, resolved, channel_key)
        _rename_operations(doc, renames)

    def writable_channel(self, doc: dict[str, Any], key: str, group: _Group) -> dict[str, Any]:
        """The channel ``key`` as a mapping of its own (a ``$ref`` is written out whole)."""
        raw = doc["channels"].get(key)
        if not isinstance(raw, dict) or "$ref" in raw:
            raw = doc["channels"][key] = dict(thaw(_resolved_channel(group, key)))
        return raw

    def channel_fields(
        self, doc: dict[str, Any], topic: Topic, old: Topic | None, group: _Group
    ) -> None:
        keys = [k for k, _ in group.channels if k is not None and k in doc["channels"]]
        primary = doc["channels"][keys[0]]
        others = [doc["channels"][k] for k in keys[1:] if isinstance(doc["channels"][k], dict)]
        if old is not None and topic.name != old.name:
            primary["address"] = topic.name
        if old is None or topic.description != old.description:
            set_or_drop(primary, "description", topic.description)
            for other in others if topic.description is None else ():
                other.pop("description", None)
        if old is None or topic.parameters != old.parameters:
            existing = mapping(primary.get("parameters"))
            set_or_drop(
                primary,
                "parameters",
                {p.name: self.parameter(p, existing.get(p.name), keys[0]) for p in topic.parameters}
                or None,
            )
        if old is None or topic.bindings != old.bindings:
            set_or_drop(primary, "bindings", thaw(topic.bindings) or None)
            for other in others if not topic.bindings else ():
                other.pop("bindings", None)
        if old is None or topic.auth_type != old.auth_type:
            value = topic.auth_type.value if topic.auth_type else None
            for channel in (primary, *others):
                if channel is primary or "x-auth-type" in channel:
                    set_or_drop(channel, "x-auth-type", value)
                if not topic.is_open:
                    channel.pop(DISABLE_SECURITY_EXTENSION, None)  # it would open the topic

    def parameter(self, param: Parameter, existing: Any, channel_key: str) -> dict[str, Any]:
        """A 3.x Parameter Object: a string with ``enum``, ``default`` and ``examples``."""
        out = {
            k: v
            for k, v in mapping(existing).items()
            if k not in ("description", *_PARAMETER_FIELDS, "$ref")
        }
        if param.description is not None:
            out = {"description": param.description, **out}
        schema = thaw(param.schema) if param.schema is not None else {}
        for field in _PARAMETER_FIELDS:
            if field in schema:
                out[field] = schema[field]
        strings = ([schema.get("default")] if "default" in schema else []) + [
            v for f in ("enum", "examples") for v in (schema.get(f) or ())
        ]
        left = [k for k in schema if k not in ("type", *_PARAMETER_FIELDS)]
        if (
            schema.get("type", "string") != "string"
            or left
            or not all(isinstance(v, str) for v in strings)
        ):
            self.fail(
                pointer_to("channels", channel_key, "parameters", param.name),
                f"parameter {json_excerpt(param.name)} has the schema {json_excerpt(schema)}: "
                "an AsyncAPI 3 parameter is a string with enum, default and examples only",
            )
        return out

    def new_operation(
        self,
        doc: dict[str, Any],
        topic: Topic,
        channel_key: str,
        side: TopicOperation,
        group: _Group,
    ) -> tuple[str, str]:
        operations = doc["operations"]
        wanted = (
            side.operation_id
            if side.operation_id and self.pov is (PointOfView.APPLICATION)
            else self.name(side.operation, topic.name, channel_key)
        )
        key = _free(operations, wanted)
        operations[key] = {
            "action": self.pov.action(side.operation),
            "channel": {"$ref": _CHANNELS + escape_token(channel_key)},
        }
        self.operation_fields(
            doc,
            operations[key],
            side,
            channel_key=channel_key,
            before=None,
            resolved=_resolved_channel(group, channel_key),
        )
        return key, channel_key

    def change_side(
        self,
        doc: dict[str, Any],
        topic: Topic,
        new: TopicOperation,
        prev: TopicOperation | None,
        *,
        side: _Side,
        group: _Group,
    ) -> list[tuple[str, str]]:
        operations = doc["operations"]
        key, resolved, channel_key = side.ops[0]
        channel_key = channel_key or topic.name
        raw = operations.get(key)
        if not isinstance(raw, dict) or "$ref" in raw:
            raw = operations[key] = thaw(resolved)
        self.operation_fields(
            doc,
            raw,
            new,
            channel_key=channel_key,
            before=prev,
            resolved=_resolved_channel(group, channel_key),
            implied=_security_scopes(resolved),
        )
        written = [(key, channel_key)]
        for other_key, _, other_channel in side.ops[1:]:
            other = operations.get(other_key)
            if not isinstance(other, dict):
                continue
            if prev is None or new.uri_mapping != prev.uri_mapping:
                set_or_drop(other, "x-uri-mapping", new.uri_mapping)
            if prev is None or new.scopes != prev.scopes:
                other.pop("x-scopes", None)
            for field, value in (("summary", new.summary), ("description", new.description)):
                if value is None:
                    other.pop(field, None)
            if prev is None or new.message != prev.message:
                other["messages"] = []
                written.append((other_key, other_channel or channel_key))
        wanted = self.name(new.operation, topic.name, channel_key)
        if self.pov is PointOfView.APPLICATION and new.operation_id:
            wanted = new.operation_id  # from the client's side, operations have WSO2's names
        if (
            prev is not None
            and new.operation_id != prev.operation_id
            and wanted != key
            and wanted not in operations
        ):
            _rename_operations(doc, {key: wanted})
            written[0] = (wanted, channel_key)
        return written

    def operation_fields(
        self,
        doc: dict[str, Any],
        out: dict[str, Any],
        op: TopicOperation,
        *,
        channel_key: str,
        before: TopicOperation | None,
        resolved: Mapping[str, Any],
        implied: tuple[str, ...] = (),
    ) -> None:
        for key, value in (
            ("summary", op.summary),
            ("description", op.description),
            ("x-uri-mapping", op.uri_mapping),
        ):
            set_or_drop(out, key, value)
        if before is None or op.scopes != before.scopes:
            set_or_drop(out, "x-scopes", [s for s in op.scopes if s not in implied] or None)
        if before is None or op.message != before.message:
            out["messages"] = self.message_refs(doc, channel_key, op.message, resolved)

    def message_refs(
        self,
        doc: dict[str, Any],
        channel_key: str,
        message: Mapping[str, Any] | None,
        resolved: Mapping[str, Any],
    ) -> list[dict[str, str]]:
        """References to ``message`` (each of a ``oneOf``) among the channel's messages, added
        there when the channel lacks them; ``resolved`` is the channel as the source resolves
        it (empty for a new channel)."""
        channel = doc["channels"][channel_key]
        messages = channel.get("messages")
        known = mapping(resolved.get("messages"))
        refs = []
        for item in _items(message):
            plain = thaw(item)
            key = next(
                (k for k, m in mapping(messages).items() if thaw(known.get(k, m)) == plain), None
            )
            if key is None:
                wanted, body = _v3_message(plain)
                messages = channel.setdefault("messages", {})
                key = _free(messages, wanted)
                messages[key] = body
            refs.append(
                {"$ref": f"{_CHANNELS}{escape_token(channel_key)}/messages/{escape_token(key)}"}
            )
        return refs

    def settle_messages(self, doc: dict[str, Any], written: list[tuple[str, str]]) -> None:
        """An operation written without messages keeps ``messages: []`` only when its channel
        has some (an operation without ``messages`` has all of its channel's)."""
        for key, channel_key in written:
            op = doc["operations"].get(key)
            if (
                isinstance(op, dict)
                and op.get("messages") == []
                and not mapping(doc["channels"].get(channel_key)).get("messages")
            ):
                del op["messages"]


def _resolved_channel(group: _Group, key: str) -> Mapping[str, Any]:
    return next((c for k, c in group.channels if k == key), {})


def _rename_operations(doc: dict[str, Any], renames: Mapping[str, str]) -> None:
    """Give operations new keys, in place, and follow the references to them."""
    if not renames:
        return
    doc["operations"] = {renames.get(k, k): v for k, v in doc["operations"].items()}
    refs = {
        "#/operations/" + escape_token(old): "#/operations/" + escape_token(new)
        for old, new in renames.items()
    }
    for value in _walk(doc):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref in refs:
            value["$ref"] = refs[ref]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            yield current
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
