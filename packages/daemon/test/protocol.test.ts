// Request parsing and validation: every bad input gets a specific error, matched to its id.
import { encodeFrame, parseRequest, type DaemonErrorCode } from "../src";

function errOf(line: string): { id: unknown; code: DaemonErrorCode; message: string } {
  const p = parseRequest(line);
  if (p.error === undefined) throw new Error(`expected an error for ${line}`);
  return { id: p.id, code: p.error.code, message: p.error.message };
}

describe("parseRequest", () => {
  it("accepts each op with its fields", () => {
    expect(parseRequest('{"id":1,"op":"suspend","domid":3,"path":"xenstore+watch","timeoutMs":500}')).toEqual({
      id: 1,
      request: { op: "suspend", domid: 3, path: "xenstore+watch", timeoutMs: 500 },
    });
    expect(parseRequest('{"id":"a","op":"resume","domid":7}').request).toEqual({ op: "resume", domid: 7 });
    expect(parseRequest('{"id":2,"op":"checkpoint.start","domid":4,"intervalMs":0}').request).toEqual({ op: "checkpoint.start", domid: 4, intervalMs: 0 });
    expect(parseRequest('{"id":2,"op":"checkpoint.start","domid":4,"intervalMs":200,"count":10}').request).toEqual({ op: "checkpoint.start", domid: 4, intervalMs: 200, count: 10 });
    expect(parseRequest('{"id":3,"op":"checkpoint.stop","domid":4}').request).toEqual({ op: "checkpoint.stop", domid: 4 });
    expect(parseRequest('{"id":4,"op":"status"}').request).toEqual({ op: "status" });
    expect(parseRequest('{"id":4,"op":"status","domid":9}').request).toEqual({ op: "status", domid: 9 });
    expect(parseRequest('{"id":5,"op":"metrics"}').request).toEqual({ op: "metrics" });
    expect(parseRequest('{"id":6,"op":"checkpoint","domid":4,"intervalMs":50,"count":9,"progressMs":250}').request).toEqual({ op: "checkpoint", domid: 4, intervalMs: 50, count: 9, progressMs: 250 });
  });

  it("takes a protocol version up to its own; a newer one is refused", () => {
    expect(parseRequest('{"id":1,"op":"metrics","v":1}').request).toEqual({ op: "metrics" });
    expect(parseRequest('{"id":1,"op":"metrics","v":2}').request).toEqual({ op: "metrics" });
    expect(errOf('{"id":1,"op":"metrics","v":3}')).toMatchObject({ code: "EINVAL", message: expect.stringContaining("newer than this daemon's (2)") as unknown });
    expect(errOf('{"id":1,"op":"metrics","v":"2"}')).toMatchObject({ code: "EINVAL" });
  });

  it("malformed JSON and non-objects are EPARSE with no id", () => {
    expect(errOf("{nope")).toMatchObject({ id: null, code: "EPARSE" });
    expect(errOf("[1,2]")).toMatchObject({ id: null, code: "EPARSE", message: expect.stringContaining("an array") as unknown });
    expect(errOf("42")).toMatchObject({ id: null, code: "EPARSE" });
    expect(errOf("null")).toMatchObject({ id: null, code: "EPARSE" });
  });

  it("a missing or bad id or op is EINVAL; an unknown op is EUNKNOWNOP with the id kept", () => {
    expect(errOf('{"op":"status"}')).toMatchObject({ id: null, code: "EINVAL", message: expect.stringContaining('"id"') as unknown });
    expect(errOf('{"id":{},"op":"status"}')).toMatchObject({ id: null, code: "EINVAL" });
    expect(errOf('{"id":1}')).toMatchObject({ id: 1, code: "EINVAL", message: expect.stringContaining('"op"') as unknown });
    expect(errOf('{"id":1,"op":7}')).toMatchObject({ id: 1, code: "EINVAL" });
    expect(errOf('{"id":"x","op":"reboot"}')).toMatchObject({ id: "x", code: "EUNKNOWNOP", message: expect.stringContaining("reboot") as unknown });
  });

  it("bad field types and ranges name the field", () => {
    expect(errOf('{"id":1,"op":"suspend"}')).toMatchObject({ code: "EINVAL", message: '"domid" is required' });
    expect(errOf('{"id":1,"op":"suspend","domid":"3"}')).toMatchObject({ code: "EINVAL", message: expect.stringContaining('"domid" must be an integer') as unknown });
    expect(errOf('{"id":1,"op":"suspend","domid":1.5}')).toMatchObject({ code: "EINVAL" });
    expect(errOf('{"id":1,"op":"suspend","domid":40000}')).toMatchObject({ code: "EINVAL", message: expect.stringContaining("[0, 32751]") as unknown });
    expect(errOf('{"id":1,"op":"suspend","domid":0}')).toMatchObject({ code: "ECONTROLDOMAIN", message: expect.stringContaining("control domain") as unknown });
    expect(errOf('{"id":1,"op":"suspend","domid":3,"path":"fast"}')).toMatchObject({ code: "EINVAL", message: expect.stringContaining('"path"') as unknown });
    expect(errOf('{"id":1,"op":"suspend","domid":3,"timeoutMs":0}')).toMatchObject({ code: "EINVAL" });
    expect(errOf('{"id":1,"op":"checkpoint.start","domid":3}')).toMatchObject({ code: "EINVAL", message: '"intervalMs" is required' });
    expect(errOf('{"id":1,"op":"checkpoint.start","domid":3,"intervalMs":-1}')).toMatchObject({ code: "EINVAL" });
    expect(errOf('{"id":1,"op":"checkpoint.start","domid":3,"intervalMs":10,"count":0}')).toMatchObject({ code: "EINVAL" });
    expect(errOf('{"id":1,"op":"resume","domid":3,"force":true}')).toMatchObject({ code: "EINVAL", message: expect.stringContaining('unknown field "force"') as unknown });
    expect(errOf('{"id":1,"op":"metrics","domid":3}')).toMatchObject({ code: "EINVAL" });
    expect(errOf('{"id":1,"op":"checkpoint","domid":3,"intervalMs":0,"progressMs":1}')).toMatchObject({ code: "EINVAL", message: expect.stringContaining('"progressMs" must be in [10,') as unknown });
    expect(errOf('{"id":1,"op":"checkpoint.start","domid":3,"intervalMs":0,"progressMs":100}')).toMatchObject({ code: "EINVAL", message: expect.stringContaining('unknown field "progressMs"') as unknown });
  });

  it("responses are one JSON line; NaN is written as null", () => {
    const line = encodeFrame({ v: 2, id: 1, ok: true, result: { domid: 3, resumeMs: Number.NaN, xsResumeMs: 2 } });
    expect(line.endsWith("\n")).toBe(true);
    expect(line.indexOf("\n")).toBe(line.length - 1);
    expect(JSON.parse(line)).toEqual({ v: 2, id: 1, ok: true, result: { domid: 3, resumeMs: null, xsResumeMs: 2 } });
  });
});
