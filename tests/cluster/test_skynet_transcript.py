"""A real exchange with skynet, replayed against the codecs (no skynet needed).

tests/vectors/skynet_cluster_transcript.json was recorded with a skynet node on loopback
(its notes say what ran): a Python script calling skynet's cluster port, and skynet's
cluster.call / cluster.send / cluster.query reaching a Python listener.
"""

import pytest
from skynet_vectors import as_recorded, as_unpacked, load, python_value, same

from meshnet.cluster.skynet.seri import pack, unpack
from meshnet.cluster.skynet.wire import (
    RequestDecoder,
    Response,
    ResponseDecoder,
    encode_push,
    encode_request,
    encode_response,
    encode_trace,
)

TRANSCRIPT = "skynet_cluster_transcript.json"
CALLING_SKYNET = load(TRANSCRIPT)["python_calls_skynet"]
CALLED_BY_SKYNET = load(TRANSCRIPT)["skynet_calls_python"]


def request_stream(request):
    """The packets of a recorded request, trace first, as our encoder writes them."""
    values = python_value(request["values"])
    encode = encode_push if request["push"] else encode_request
    head = b"" if request["trace"] is None else encode_trace(request["trace"])
    return head + encode(request["address"], request["session"] or 1, pack(*values))


def response_stream(response):
    payload = pack(*python_value(response["values"])) if response["ok"] else response["error"]
    return encode_response(response["session"], response["ok"], payload)


def decoded_response(response):
    if response["ok"]:
        return response["session"], True, python_value(response["values"])
    return response["session"], False, response["error"]


def steps(transcript):
    return [pytest.param(step, id=step["comment"]) for step in transcript]


# --- Python calling skynet ----------------------------------------------------------------


@pytest.mark.parametrize("step", steps(CALLING_SKYNET))
def test_requests_skynet_answered_are_what_our_encoder_writes(step):
    assert as_recorded(step["sent"], request_stream(step["request"])) == request_stream(
        step["request"]
    )


def test_skynet_answers_decode_to_what_the_caller_saw():
    decoder = ResponseDecoder()
    for step in CALLING_SKYNET:
        if "response" not in step:
            assert step["received"] == [] and step["request"]["push"]
            continue
        received = as_recorded(step["received"], response_stream(step["response"]))
        [response] = [r for chunk in _chunks(received, 7) for r in decoder.feed(chunk)]
        assert response.session == step["request"]["session"]
        payload = unpack(response.payload) if response.ok else response.payload.decode()
        expected = decoded_response(step["response"])
        assert same(
            (response.session, response.ok, list(payload) if response.ok else payload), expected
        )


def test_a_skynet_service_that_raises_answers_call_failed():
    [failed] = [s for s in CALLING_SKYNET if s["comment"] == "call @echo fail"]
    assert not failed["response"]["ok"]
    assert failed["response"]["error"].endswith("call failed")


def test_pushes_reached_the_skynet_service_in_order():
    [pushes] = [s for s in CALLING_SKYNET if s["comment"] == "call @echo pushes"]
    assert python_value(pushes["response"]["values"]) == [
        ["first push", "second push", "<40000 bytes>"]
    ]


# --- skynet calling Python ----------------------------------------------------------------


def test_skynet_requests_decode_to_what_skynet_sent():
    decoder = RequestDecoder()
    for step in CALLED_BY_SKYNET:
        request = step["request"]
        received = as_recorded(step["received"], request_stream(request))
        [got] = [r for chunk in _chunks(received, 5) for r in decoder.feed(chunk)]
        fields = (got.address, got.session, got.push, got.trace)
        assert fields == (request["address"], request["session"], request["push"], request["trace"])
        assert same(list(unpack(got.payload)), python_value(request["values"]))


@pytest.mark.parametrize("step", steps(CALLED_BY_SKYNET))
def test_our_answers_are_the_bytes_skynet_read(step):
    if "response" not in step:
        assert step["sent"] == [] and step["request"]["push"]
        return
    ours = response_stream(step["response"])
    assert as_recorded(step["sent"], ours) == ours
    assert ResponseDecoder().feed(ours) == [
        Response(step["response"]["session"], step["response"]["ok"], _payload(step["response"]))
    ]


@pytest.mark.parametrize("step", steps(CALLED_BY_SKYNET))
def test_skynet_got_what_we_answered(step):
    result = step["skynet_result"]
    response = step.get("response")
    if response is None:  # cluster.send returns nothing
        assert result == {"comment": step["comment"], "ok": True, "values": []}
    elif response["ok"]:
        got = [as_unpacked(v) for v in result["values"]]
        assert same(got, python_value(response["values"]))
    else:
        assert not result["ok"] and result["error"].endswith("call failed")


def test_skynet_sends_a_trace_tag_naming_its_node_and_session():
    [traced] = [s for s in CALLED_BY_SKYNET if s["request"]["trace"] is not None]
    tag = traced["request"]["trace"]
    assert tag.startswith("(") and tag.endswith("):00000008-1")
    assert f"-pynode-{traced['request']['session'] + 1})" in tag


def _payload(response):
    if response["ok"]:
        return pack(*python_value(response["values"]))
    return response["error"].encode()


def _chunks(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]
