/**
 * A walk over everything script code can reach from its global object, run INSIDE an isolate (as
 * source text): every own property name and symbol (non-enumerable ones too) of every object and
 * function reached, their prototypes, getters, setters and what getters return (called on their
 * holder, errors ignored). It reports what looks like isolated-vm (a constructor name or tag such
 * as Reference, ExternalCopy, Isolate, Context, Script, Callback, Module) and every native
 * function (`[native code]`) whose signature is not among those of a fresh bare isolate.
 */
export interface GraphReport {
  /** Objects and functions visited. */
  visited: number;
  /** Native function signatures found (name/length/own keys), sorted. */
  natives: string[];
  /** Paths whose constructor or tag looks like isolated-vm. */
  suspicious: string[];
  /** Native functions whose signature a bare isolate does not have, with where they were found. */
  unknownNatives: string[];
}

/**
 * `(function scan(extraRoots, allowedNatives) { ... })`: call with the extra roots (an object of
 * name → value, e.g. the handler's input and ctx) and the bare isolate's natives, or null to only
 * collect them. Plain JavaScript: it runs in a bare isolate as it is, and inside a script.
 */
export const SCAN_SOURCE = String.raw`(function scan(extraRoots, allowedNatives) {
  var getProto = Object.getPrototypeOf, describe = Object.getOwnPropertyDescriptor, keysOf = Reflect.ownKeys;
  var fnToString = Function.prototype.toString, tagOf = Object.prototype.toString, call = Function.prototype.call;
  var looksLikeIvm = /Reference|ExternalCopy|Isolate|Context|Script|Callback|Module|isolated/i;
  var allowed = allowedNatives ? new Set(allowedNatives) : null;
  var seen = new Set();
  var natives = new Set();
  var suspicious = [];
  var unknownNatives = [];
  var queue = [[globalThis, "globalThis"]];
  for (var root in extraRoots) queue.push([extraRoots[root], root]);
  var visited = 0;
  function safe(f, fallback) { try { return f(); } catch (e) { return fallback; } }
  function signature(fn) {
    var name = safe(function () { var d = describe(fn, "name"); return d && "value" in d ? String(d.value) : "?"; }, "?");
    var length = safe(function () { var d = describe(fn, "length"); return d && "value" in d ? String(d.value) : "?"; }, "?");
    var own = safe(function () { return keysOf(fn).map(String).sort().join(","); }, "?");
    return name + "/" + length + "/" + own;
  }
  for (var i = 0; i < queue.length; i++) {
    var value = queue[i][0], path = queue[i][1];
    if (value === null || (typeof value !== "object" && typeof value !== "function") || seen.has(value)) continue;
    seen.add(value);
    visited++;
    var tag = safe(function () { return call.call(tagOf, value); }, "<no tag>");
    var proto = safe(function () { return getProto(value); }, null);
    var ctor = safe(function () { var d = proto && describe(proto, "constructor"); return d && typeof d.value === "function" ? String(describe(d.value, "name").value) : ""; }, "");
    if (typeof value === "function") {
      var source = safe(function () { return call.call(fnToString, value); }, "<no source>");
      if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
        var sig = signature(value);
        natives.add(sig);
        if (allowed && !allowed.has(sig)) unknownNatives.push(path + " " + sig);
      }
      if (looksLikeIvm.test(signature(value).split("/")[0]) && !/native code/.test(source)) {} // JS functions: names are the script's own
    }
    if (looksLikeIvm.test(tag) || looksLikeIvm.test(ctor)) suspicious.push(path + " " + tag + " " + ctor);
    queue.push([proto, path + ".[[Prototype]]"]);
    var keys = safe(function () { return keysOf(value); }, []);
    for (var k = 0; k < keys.length; k++) {
      var key = keys[k];
      var name = typeof key === "symbol" ? "[" + String(key) + "]" : key;
      var d = safe(function () { return describe(value, key); }, undefined);
      if (!d) continue;
      if ("value" in d) { queue.push([d.value, path + "." + name]); continue; }
      if (d.get) {
        queue.push([d.get, path + ".get " + name]);
        var got = safe(function () { return call.call(d.get, value); }, undefined);
        queue.push([got, path + "." + name]);
      }
      if (d.set) queue.push([d.set, path + ".set " + name]);
    }
  }
  return JSON.stringify({ visited: visited, natives: Array.from(natives).sort(), suspicious: suspicious, unknownNatives: unknownNatives });
})`;
