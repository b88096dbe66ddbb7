"""The JavaScript driver (drivers/javascript/sbx_driver.js) in a TypeScript
context: started like the JavaScript one, with SBX_DRIVER_LANGUAGE=typescript
in its environment, it strips each cell's type syntax itself (spaces in place
of the types, line breaks kept) before its usual processing.

The harness is the JavaScript driver test's (itself the Python driver
test's): only the environment and the ready event differ."""
import fcntl
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("_sbx_javascript_driver_tests",
                                               os.path.join(_HERE, "test_javascript_driver.py"))
js = importlib.util.module_from_spec(_spec)            # its test_* stay out of this module's names
_spec.loader.exec_module(js)
harness = js.harness
_tb = harness._tb


class Driver(js.Driver):
    """node -e "<sbx_driver.js>" with SBX_DRIVER_LANGUAGE=`language` (None: unset)."""

    def __init__(self, language="typescript", expect="typescript"):
        with open(js.DRIVER, encoding="ascii") as f:
            src = f.read()
        home = harness._scratch()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8"}
        if language is not None:
            env["SBX_DRIVER_LANGUAGE"] = language
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ev_r, ev_w = os.pipe()
        req_r, req_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        src_fds = []
        for fd in (devnull, out_w, err_w, ev_w, req_r):
            src_fds.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100))
            os.close(fd)
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(src_fds)]
        argv = ["/usr/bin/env", "-C", home, js.NODE, "--experimental-vm-modules", "-e", src]
        try:
            self.pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        finally:
            for fd in src_fds:
                os.close(fd)
        self.home = home
        self.pidfd = os.pidfd_open(self.pid)
        self.status = None
        self.out_fd, self.err_fd, self.ev_fd, self.req_fd = out_r, err_r, ev_r, req_w
        for fd in (out_r, err_r, ev_r):
            os.set_blocking(fd, False)
        self.out, self.err, self.evbuf = bytearray(), bytearray(), bytearray()
        self.eof = set()
        self.events = []
        self.next_id = 1
        try:
            self.ready = self.next_event(15)
            assert self.ready == {"type": "ready", "language": expect, "pid": self.pid}, self.ready
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise


def _syntax_error(ex, line):
    """The error of a cell that must not have run: a SyntaxError at `line` of the cell."""
    err = ex.error
    assert err is not None and err["name"] == "SyntaxError", (err, ex.results)
    tb = err["traceback"]
    assert tb[0] == "<cell-%d>:%d" % (ex.end["execution_count"], line), tb
    assert tb[-1] == "SyntaxError: " + err["value"] and "^" in tb[2], tb
    return err


# ---------------------------------------------------------------------------


def test_ts_ready_language_and_the_variable_is_gone(ctx):
    with Driver() as d:                          # ready says typescript (checked on start)
        assert d.value("typeof process.env.SBX_DRIVER_LANGUAGE") == "'undefined'"
        assert d.value("'SBX_DRIVER_LANGUAGE' in process.env") == "false"
        ex = d.ok("require('child_process').execSync('env', {stdio: 'inherit'})\nundefined")
        assert "SBX_DRIVER_LANGUAGE" not in ex.stdout and "HOME=" in ex.stdout, ex.stdout
    for other in ("javascript", "TypeScript", "python", ""):
        with Driver(other, expect="javascript") as d:
            ex = d.run("let x = 1 as number")
            assert ex.error["name"] == "SyntaxError", (other, ex.error)
            assert d.value("typeof process.env.SBX_DRIVER_LANGUAGE") == "'undefined'"


def test_ts_plain_javascript_driver_strips_nothing(ctx):
    with js.Driver() as d:                       # env unset: ready says javascript
        for code in ("let x = 1 as number", "let y: number = 1", "interface I { a: number }",
                     "function f(a: string): void {}", "enum E { A }", "let z = w!"):
            ex = d.run(code)
            assert ex.error is not None and ex.error["name"] == "SyntaxError", (code, ex.error)
        assert d.value("typeof x + typeof y + typeof f") == "'undefinedundefinedundefined'"
        # what would be stripped as TypeScript is ordinary JavaScript here
        assert d.value("const a = 5, b = 2\nlet as = 3;\n[a < b, a > b, as, !b]") == "[ false, true, 3, false ]"


def test_ts_annotations_optional_params_and_definite_assignment(ctx):
    with Driver() as d:
        assert d.value("let x: number = 1\nconst s: string = 'a'\nvar u: string | undefined\n[x, s, u]") \
            == "[ 1, 'a', undefined ]"
        d.ok("function f(a: string, b?: number, ...rest: Array<number | string>): string {\n"
             "  return a + (b ?? '-') + rest.length\n}")
        assert d.value("[f('a'), f('a', 2), f('a', 2, 3, 'x')]") == "[ 'a-0', 'a20', 'a22' ]"
        assert d.value("const add = (a: number, b: number = 10): number => a + b\nadd(1) + add(1, 1)") == "13"
        assert d.value("const asy = async (v: string): Promise<string> => v.toUpperCase()\nawait asy('q')") == "'Q'"
        assert d.value("const {p, q}: {p: number; q: string} = {p: 1, q: 'z'}\n"
                       "const [m, n]: [number, number] = [2, 3]\n"
                       "function g({a, b = 2}: {a: number, b?: number} = {a: 1}): number { return a + b }\n"
                       "[p, q, m, n, g(), g({a: 5, b: 5})]") == "[ 1, 'z', 2, 3, 3, 10 ]"
        assert d.value("let later!: number\nlater = 4\nlet cb: (err: Error | null, data?: string) => void = () => {}\n"
                       "let o: { f(): number; readonly k: number } = { f: () => 1, k: 2 };\n[later, o.f() + o.k]") \
            == "[ 4, 3 ]"
        assert d.value("function that(this: {v: number}, k: number): number { return this.v * k }\nthat.call({v: 2}, 3)") \
            == "6"
        assert d.value("function isNum(v: unknown): v is number { return typeof v === 'number' }\n"
                       "function check(v: unknown): asserts v is string {}\n"
                       "[1, 'a', 2].filter((v): v is number => isNum(v))") == "[ 1, 2 ]"
        assert d.value("let msg = ''\ntry { throw new Error('x') } catch (e: unknown) { msg = (e as Error).message }\nmsg") \
            == "'x'"
        assert d.value("for (let i: number = 0, j: number = 5; i < j; i++) { j-- }\n"
                       "const r: string[] = []\nfor (const [k, v] of Object.entries({a: 1}) as [string, number][]) r.push(k + v)\n"
                       "r") == "[ 'a1' ]"


def test_ts_generics(ctx):
    with Driver() as d:
        d.ok("function id<T>(x: T): T { return x }\n"
             "function first<T extends {length: number} = string[], U = T>(xs: T): U { return xs[0 as keyof T] as U }")
        assert d.value("[id<number>(5), id<{a: number}>({a: 1}).a, first<string>('xy')]") == "[ 5, 1, 'x' ]"
        assert d.value("const m = new Map<string, Array<Map<string, number>>>()\nm.set('k', [new Map([['z', 1]])])\n"
                       "m.get('k')![0].get('z')") == "1"
        assert d.value("class Box<T> {\n  constructor(public value: T) {}\n"
                       "  map<U>(f: (x: T) => U): Box<U> { return new Box<U>(f(this.value)) }\n}\n"
                       "new Box<number>(2).map<string>((x: number): string => 'v' + x).value") == "'v2'"
        assert d.value("const ident = <T,>(x: T): T => x\nconst wrap = async <T>(x: T): Promise<T[]> => [x];\n"
                       "[ident(1), await wrap<number>(2)]") == "[ 1, [ 2 ] ]"
        assert d.value("const p = new Promise<void>((resolve) => setTimeout(resolve, 1))\n"
                       "await p;\n[3, 1, 2].sort((a: number, b: number): number => a - b)") == "[ 1, 2, 3 ]"
        # comparisons stay comparisons
        assert d.value("const a = 1, b = 2, c = 3;\n[a < b, b > c, a < b && c > b, a < b ? 'lt' : 'ge', (a < b) > (c < a)]") \
            == "[ true, false, true, 'lt', true ]"
        assert d.value("let s = 0\nfor (let i = 0; i < 3; i++) s += i >> 0 >>> 0\ns >= 3") == "true"


def test_ts_interfaces_and_type_aliases_are_removed(ctx):
    with Driver() as d:
        ex = d.ok("interface Point {\n  x: number\n  y: number\n  dist?(o: Point): number\n}\n"
                  "export interface Named<T> extends Point, Base {\n  readonly name: string\n  [k: string]: unknown\n}\n"
                  "type ID = string | number\nexport type Pair<A, B = A> = {\n  first: A;\n  second: B\n};\n"
                  "type Fn = <T>(x: T) => T\ntype Keys = keyof Point\n"
                  "type Deep<T> = { [K in keyof T]?: T[K] extends object ? Deep<T[K]> : T[K] }\n"
                  "type Tpl = `${number}px` | `id-${string}`")
        assert ex.results == [] and ex.stdout == "", (ex.results, ex.stdout)
        assert d.value("typeof Point + typeof Named + typeof ID + typeof Pair") \
            == "'undefinedundefinedundefinedundefined'"
        assert d.value("const pt: Point = {x: 3, y: 4}\nMath.hypot(pt.x, pt.y)") == "5"
        # a removed declaration still ends the statement before it
        assert d.value("const arr = [1, 2]\ntype T = number\n[3, 4].length") == "2"
        assert d.value("const arr2 = [1, 2]\ninterface Q { a: 1 }\n[3, 4, 5].length") == "3"
        assert d.value("let typed: ID = 'x'\nconst type = 'a variable named type'\ntype") == "'a variable named type'"


def test_ts_casts_satisfies_and_non_null(ctx):
    with Driver() as d:
        d.ok("const raw: unknown = {a: {b: [10, 20]}}\nconst maybe: {v?: {w: number}} = {v: {w: 7}}")
        assert d.value("(raw as {a: {b: number[]}}).a.b[1]") == "20"
        assert d.value("const r2 = raw as unknown as Record<string, any>\nr2.a.b.length") == "2"
        assert d.value("const tuple = [1, 'x'] as const\ntuple") == "[ 1, 'x' ]"
        assert d.value("const cfg = {port: 80} satisfies Record<string, number>\ncfg.port") == "80"
        assert d.value("maybe.v!.w + maybe!.v!['w']") == "14"
        assert d.value("const q: any = 6;\n[(q as number) / 2, q! / 3, q!]") == "[ 3, 2, 6 ]"
        assert d.value("let nn: number | null = 5\nlet copy = nn!\n!copy") == "false"
        assert d.value("`${q as number}:${`${maybe.v!.w}`}`") == "'6:7'"


def test_ts_declare_and_type_only_imports(ctx):
    with Driver() as d:
        ex = d.ok("declare const GLOBAL_FLAG: boolean;\ndeclare let later: number\n"
                  "declare function external(a: number): string;\ndeclare class Ext<T = {}> {\n  m(): void\n}\n"
                  "declare global {\n  interface Window { x: number }\n}\ndeclare module 'thing' {\n  export const y: 1\n}\n"
                  "declare namespace NS { const z: number }\ndeclare enum DE { A }\n'after'")
        assert ex.text == "'after'", ex.text
        assert d.value("[typeof GLOBAL_FLAG, typeof external, typeof Ext, typeof DE]") \
            == "[ 'undefined', 'undefined', 'undefined', 'undefined' ]"
        assert d.value("import type { Stats } from 'fs'\nimport type * as T from 'os'\n"
                       "import { join, type ParsedPath, type PlatformPath as PP } from 'path'\n"
                       "export type { Stats }\njoin('a', 'b')") == "'a/b'"
        # only type specifiers: the whole import goes, the module is never loaded
        assert d.value("import { type Nothing } from 'no-such-module-anywhere'\n'not loaded'") == "'not loaded'"
        assert d.value("import os = require('os')\ntypeof os.cpus") == "'function'"


def test_ts_classes_modifiers_and_parameter_properties(ctx):
    with Driver() as d:
        d.ok("class Account {\n"
             "  static count: number = 0\n"
             "  #secret: string = 's'\n"
             "  private readonly id?: number\n"
             "  public label!: string\n"
             "  protected tags: string[] = []\n"
             "  constructor(public owner: string, private balance: number = 0, readonly currency = 'EUR') {\n"
             "    Account.count++\n"
             "  }\n"
             "  deposit(amount: number): this { this.balance += amount; return this }\n"
             "  get total(): string { return this.balance + ' ' + this.currency }\n"
             "  static make(owner: string): Account { return new Account(owner) }\n"
             "}")
        assert d.value("const acct = Account.make('ann').deposit(5);\n[acct.owner, acct.total, Account.count, 'id' in acct]") \
            == "[ 'ann', '5 EUR', 1, true ]"
        assert d.value("Object.keys(new Account('bob', 3))") \
            == "[ 'id', 'label', 'tags', 'owner', 'balance', 'currency' ]"
        # a derived class: the parameter properties are set after super()
        d.ok("abstract class Shape implements HasArea, Named<string> {\n"
             "  abstract area(): number\n"
             "  abstract readonly kind: string\n"
             "  declare hidden: number\n"
             "  [extra: string]: unknown\n"
             "  constructor(protected name: string) {}\n"
             "  describe(): string { return `${this.name}:${this.area()}` }\n"
             "}\n"
             "class Square extends Shape {\n"
             "  kind = 'square'\n"
             "  constructor(private side: number) {\n"
             "    super('sq')\n"
             "    this.side = this.side * 2\n"
             "  }\n"
             "  area(): number { return this.side ** 2 }\n"
             "}")
        assert d.value("const sq = new Square(3);\n[sq.describe(), sq.kind, 'hidden' in sq, typeof Shape]") \
            == "[ 'sq:36', 'square', false, 'function' ]"
        # overload signatures (functions and methods) are removed, the implementation stays
        d.ok("function over(a: string): string\nfunction over(a: number): number\n"
             "function over(a: any): any { return typeof a }\n"
             "class Ov {\n  f(x: string): string;\n  f(x: number): number;\n  f(x: any) { return x }\n}")
        assert d.value("[over(1), over('a'), new Ov().f(3)]") == "[ 'number', 'string', 3 ]"
        assert d.value("class Gen<T extends object = {}> extends Array<T> implements Iterable<T> {\n"
                       "  first(): T | undefined { return this[0] }\n}\nnew Gen<{a: number}>({a: 1}).first()") == "{ a: 1 }"
        assert d.value("class Arrows { handler = (e: string): string => e + '!'; gen = <T,>(x: T) => [x] }\n"
                       "const ar = new Arrows();\n[ar.handler('hi'), ar.gen(1)]") == "[ 'hi!', [ 1 ] ]"


def test_ts_enums_values_and_reverse_mapping(ctx):
    with Driver() as d:
        for _ in range(2):                       # an enum cell runs again: a new object, no error
            ex = d.ok("enum Color {\n  Red,\n  Green = 5,\n  Blue\n}\n"
                      "const enum Flags { None = 0, A = 1 << 0, B = 1 << 1, AB = A | B, Next }\n"
                      "enum Dir { Up = 'UP', Down = 'DOWN' }\n"
                      "enum Mixed { 'with space' = 1, Plain }")
            assert ex.results == [], ex.results
        assert d.value("[Color.Red, Color.Green, Color.Blue, Color[0], Color[5], Color[6]]") \
            == "[ 0, 5, 6, 'Red', 'Green', 'Blue' ]"
        assert d.value("[Flags.A, Flags.B, Flags.AB, Flags.Next, Flags[3]]") == "[ 1, 2, 3, 4, 'AB' ]"
        assert d.value("[Dir.Up, Dir.Down, Dir.UP, Object.keys(Dir)]") \
            == "[ 'UP', 'DOWN', undefined, [ 'Up', 'Down' ] ]"
        assert d.value("[Mixed['with space'], Mixed.Plain, Mixed[2]]") == "[ 1, 2, 'Plain' ]"
        assert d.value("function paint(c: Color): string { return Color[c] }\npaint(Color.Blue)") == "'Blue'"
        # an enum in an async cell is a global too
        assert d.value("await null\nenum Late { X = 10, Y }\nLate.Y") == "11"
        assert d.value("Late[11]") == "'Y'"


def test_ts_state_across_cells_and_rerun(ctx):
    with Driver() as d:
        for _ in range(2):                       # the same annotated cell, re-run
            assert d.ok("let x: number = 1").results == []
            assert d.value("const k: string = 'v'\nk") == "'v'"
            d.ok("class Point2 {\n  constructor(public x: number, public y: number) {}\n}")
        assert d.value("x += 41\nx") == "42"
        d.ok("function sq(n: number): number { return n * n }\ninterface Shape { r: number }")
        assert d.value("const shapes: Shape[] = [{r: 1}, {r: 2}]\nshapes.map((s: Shape): number => sq(s.r))") == "[ 1, 4 ]"
        assert d.value("new Point2(1, 2).y + sq(x)") == "1766"
        assert d.value("const res: number = await Promise.resolve<number>(7)\nlet after: string = 'a' + res\nafter") \
            == "'a7'"
        assert d.value("[res, after]") == "[ 7, 'a7' ]", "an async cell's annotated declarations are globals"
        assert d.value("let mut: number = 1\nmut = 5 as number\nmut") == "5"


def test_ts_last_expression_value_of_annotated_expressions(ctx):
    with Driver() as d:
        assert d.value("const v: number = 3\nv as number") == "3"
        assert d.value("(v satisfies number) + 1") == "4"
        assert d.value("const o: {a?: number} = {a: 2}\no.a!") == "2"
        assert d.value("[v, v] as const;") == "[ 3, 3 ]"
        assert d.value("v as number\ninterface AfterValue { z: 1 }\ntype AlsoAfter = 1;") == "3"
        assert d.value("({n: v} as {n: number})") == "{ n: 3 }"
        assert d.value("await Promise.resolve(v) as number") == "3"
        assert d.value("<T,>(a: T): T => a") == "[Function (anonymous)]"
        ex = d.ok("let nothing: number = 1")
        assert ex.results == [], ex.results


def test_ts_error_lines_after_removed_types(ctx):
    with Driver() as d:
        ex = d.run("interface Config {\n  name: string\n  nested: {\n    deep: number\n  }\n}\n"
                   "type Alias =\n  | 'a'\n  | 'b'\n"
                   "const cfg: Config = {name: 'c', nested: {deep: 1}}\n"
                   "function fail(c: Config): never {\n  throw new Error('bad ' + c.name)\n}\n"
                   "fail(cfg as Config)")
        assert ex.error["name"] == "Error" and ex.error["value"] == "bad c", ex.error
        n = ex.end["execution_count"]
        tb = _tb(ex)
        assert "at fail (<cell-%d>:12:9)" % n in tb and "<cell-%d>:14:1" % n in tb, tb
        # a JavaScript SyntaxError after stripping: its line and text are the cell's
        ex = d.run("interface A {\n  a: number\n}\nlet ok: number = 1\nlet bad: number = (1 +* 2)")
        err = _syntax_error(ex, 5)
        assert ex.error["traceback"][1] == "let bad: number = (1 +* 2)", err
        # a runtime error's column on a line with types removed
        ex = d.run("const z: {a: number} | undefined = undefined\n\nconst w: number = z!.a")
        assert ex.error["name"] == "TypeError", ex.error
        assert "<cell-%d>:3:22" % ex.end["execution_count"] in _tb(ex), _tb(ex)


def test_ts_strings_templates_regexes_and_comments_are_unchanged(ctx):
    with Driver() as d:
        code = ("const s1: string = 'let x: number = 1 as any; interface I {}'\n"
                "const s2 = \"enum E { A } x!.y <T>(a: T) => a\"\n"
                "const t1 = `type T = ${'a' as string}: ${`${1 as number}!`} <T> as const`\n"
                "const r1 = /a: b<c> as (d)?!/g\n"
                "// let c1: number = 1\n"
                "/* interface C { x: 1 } */\n"
                "const t2 = `multi: string\n  line ${s1.length > 1 ? 'y' : 'n'}`;\n"
                "[s1, s2, t1, r1.source, t2]")
        for _ in range(2):
            assert d.value(code) == ("[\n  'let x: number = 1 as any; interface I {}',\n"
                                     "  'enum E { A } x!.y <T>(a: T) => a',\n"
                                     "  'type T = a: 1! <T> as const',\n"
                                     "  'a: b<c> as (d)?!',\n"
                                     "  'multi: string\\n  line y'\n]"), d.value(code)
        assert d.value("typeof c1 + typeof C") == "'undefinedundefined'"
        assert d.value("String.raw`a: ${1 as number} \\d`") == "'a: 1 \\\\d'"


def test_ts_ternaries_arrows_and_object_literals(ctx):
    with Driver() as d:
        assert d.value("const c = true, x = 1, y = 2\nconst t = c ? (x) : y\nconst u = !c ? x : (y);\n[t, u]") == "[ 1, 2 ]"
        assert d.value("const f = (a: number): string => a > 0 ? 'pos' : a < 0 ? 'neg' : 'zero';\n[f(1), f(-1), f(0)]") \
            == "[ 'pos', 'neg', 'zero' ]"
        assert d.value("const g = c ? (a: number) => a + 1 : (a: number): number => a - 1\ng(1)") == "2"
        assert d.value("const h = c ? ((a: number): number => a * 10) : null\nh!(2)") == "20"
        assert d.value("const o = {\n  a: c ? {k: 1} : {k: 2},\n  m(v: number): number { return v * 2 },\n"
                       "  get g(): string { return 'g' },\n  n: (v: string): string => v,\n  type: 'field',\n"
                       "  interface: 1,\n};\n[o.a.k, o.m(2), o.g, o.n('n'), o.type, o.interface]") \
            == "[ 1, 4, 'g', 'n', 'field', 1 ]"
        assert d.value("let out = ''\nswitch (x as number) {\n  case 1: { out = 'one'; break }\n  default: out = 'other'\n}\n"
                       "lbl: for (const v of [1]) { break lbl }\nout") == "'one'"
        ex = d.ok("if (x) !y && console.log('never')\nwhile (!x) !y\n'no non-null after if (...)'")
        assert ex.text == "'no non-null after if (...)'" and ex.stdout == "", (ex.text, ex.stdout)


def test_ts_unsupported_syntax_is_a_clear_syntax_error(ctx):
    with Driver() as d:
        d.ok("var before = 1")
        cases = [
            ("console.log('ran')\nconst n = 5\nconst old = <number>n", 3, "<T>expr"),
            ("console.log('ran')\nnamespace NS {\n  export const a = 1\n}", 2, "namespace"),
            ("console.log('ran')\nconst el = <div>hi</div>", 2, "JSX"),
            ("console.log('ran')\nclass D {\n  @decorate m() {}\n}", 3, "class member"),
            ("console.log('ran')\nlet v: = 5", 2, "expected a type"),
            ("console.log('ran')\nenum E { A = }", 2, "enum member"),
        ]
        for code, line, what in cases:
            ex = d.run(code)
            err = _syntax_error(ex, line)
            assert "TypeScript not understood" in err["value"] and what in err["value"], (code, err)
            assert ex.stdout == "", "nothing of a cell that could not be stripped runs"
            assert err["traceback"][1] == code.split("\n")[line - 1], err["traceback"]
        ex = d.run("const col = 1\nconst bad = <string>col")
        assert _syntax_error(ex, 2)["traceback"][2] == " " * 12 + "^", ex.error
        d.ping()
        assert d.value("before + 1") == "2", "the context lives on"
