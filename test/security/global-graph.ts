/**
 * A search of everything script code can reach, run INSIDE an isolate as source text: every own
 * property name and symbol (non-enumerable ones too) of every object and function reached, their
 * prototypes, getters, setters, and what each getter returns when called on its holder (errors
 * ignored). Functions are objects, so their own properties are searched too.
 *
 * It runs in two phases. Phase 1 starts at the global properties a fresh bare isolate has (the
 * standard ones) and records, for every native function (`[native code]`), the breadth-first path
 * it was first reached by and its signature (name, length, own keys); in a bare isolate that is the
 * reference. Phase 2 goes on from everything else: the global properties the bare isolate does not
 * have, and extra roots (a handler's input and ctx).
 *
 * What is reported:
 * - `suspicious`: anything whose constructor name or Symbol.toStringTag looks like isolated-vm
 *   (Reference, ExternalCopy, Isolate, Context, Script, Callback, Module);
 * - `unknownNatives`: a native function at a phase-1 path the bare isolate has no native at, or
 *   with another signature there, and every native function reached only in phase 2. A standard
 *   built-in is reached in phase 1 at the path the bare isolate has it at; anything else native
 *   (an isolated-vm Callback, Reference#deref, the module's classes) is not.
 */
export interface GraphReport {
  /** Objects and functions visited, both phases. */
  visited: number;
  /** Global property names (and symbols, as `Symbol(...)`), as the isolate has them. */
  globals: string[];
  /** Phase 1: path → signature of every native function. */
  natives: Record<string, string>;
  suspicious: string[];
  unknownNatives: string[];
}

/** What the search of a bare isolate gives, to compare a script's isolate with. */
export interface Reference {
  globals: string[];
  natives: Record<string, string>;
}

/**
 * `(function scan(reference, extraRoots) { ... })`, returning the report as JSON. Call it with null
 * in a bare isolate to make the reference. Plain JavaScript, for a bare isolate and a script alike.
 */
export const SCAN_SOURCE = String.raw`(function scan(reference, extraRoots) {
  var getProto = Object.getPrototypeOf, describe = Object.getOwnPropertyDescriptor, keysOf = Reflect.ownKeys;
  var fnToString = Function.prototype.toString, tagOf = Object.prototype.toString, call = Function.prototype.call;
  var looksLikeIvm = /Reference|ExternalCopy|Isolate|Context|Script|Callback|Module|isolated/i;
  var standard = reference ? new Set(reference.globals) : null;
  var seen = new Set();
  var natives = {};
  var suspicious = [];
  var unknownNatives = [];
  var visited = 0;
  var later = [];
  function safe(f, fallback) { try { return f(); } catch (e) { return fallback; } }
  function signature(fn) {
    var name = safe(function () { var d = describe(fn, "name"); return d && "value" in d ? String(d.value) : "?"; }, "?");
    var length = safe(function () { var d = describe(fn, "length"); return d && "value" in d ? String(d.value) : "?"; }, "?");
    var own = safe(function () { return keysOf(fn).map(String).sort().join(","); }, "?");
    return name + "/" + length + "/" + own;
  }
  var globals = keysOf(globalThis).map(String);
  function walk(queue, phase) {
    for (var i = 0; i < queue.length; i++) {
      var value = queue[i][0], path = queue[i][1];
      if (value === null || (typeof value !== "object" && typeof value !== "function") || seen.has(value)) continue;
      seen.add(value);
      visited++;
      var tag = safe(function () { return call.call(tagOf, value); }, "<no tag>");
      var proto = safe(function () { return getProto(value); }, null);
      var ctor = safe(function () { var d = proto && describe(proto, "constructor"); return d && typeof d.value === "function" ? String(describe(d.value, "name").value) : ""; }, "");
      if (looksLikeIvm.test(tag) || looksLikeIvm.test(ctor)) suspicious.push(path + " " + tag + " " + ctor);
      if (typeof value === "function") {
        var source = safe(function () { return call.call(fnToString, value); }, "<no source>");
        if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
          var sig = signature(value);
          if (phase === 1) natives[path] = sig;
          if (reference && (phase === 2 || reference.natives[path] !== sig)) unknownNatives.push(path + " " + sig);
        }
      }
      queue.push([proto, path + ".[[Prototype]]"]);
      var keys = safe(function () { return keysOf(value); }, []);
      for (var k = 0; k < keys.length; k++) {
        var key = keys[k];
        var name = typeof key === "symbol" ? "[" + String(key) + "]" : key;
        var target = queue;
        if (value === globalThis && standard && !standard.has(String(key))) target = later;
        var d = safe(function () { return describe(value, key); }, undefined);
        if (!d) continue;
        if ("value" in d) { target.push([d.value, path + "." + name]); continue; }
        if (d.get) {
          target.push([d.get, path + ".get " + name]);
          var got = safe(function () { return call.call(d.get, value); }, undefined);
          target.push([got, path + "." + name]);
        }
        if (d.set) target.push([d.set, path + ".set " + name]);
      }
    }
  }
  // Intrinsics no global names (AsyncFunction, the iterator prototypes, %ThrowTypeError%), reached
  // through fresh values made here, the same way in every isolate.
  var intrinsics = {
    asyncFunction: async function () {}, generator: function* () {}, asyncGenerator: async function* () {},
    arrayIterator: [].values(), mapIterator: new Map().entries(), setIterator: new Set().values(),
    stringIterator: ""[Symbol.iterator](), regExpIterator: "".matchAll(/a/g),
    sloppyArguments: Function("return arguments")(), strictArguments: Function("'use strict'; return arguments")()
  };
  walk([[globalThis, "globalThis"], [intrinsics, "intrinsics"]], 1);
  for (var root in extraRoots || {}) later.push([extraRoots[root], root]);
  walk(later, 2);
  return JSON.stringify({ visited: visited, globals: globals, natives: natives, suspicious: suspicious, unknownNatives: unknownNatives });
})`;
