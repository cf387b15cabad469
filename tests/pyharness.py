"""The runner of the Python test scripts (tests/test_python.py,
tests/test_torch.py): @test registers a case, Skip skips it with a reason,
main() runs the cases named on the command line (all by default), prints a
line per case and closes with "N passed, N failed[, N skipped]", which
tests/run.sh reads."""

import traceback

TESTS = []


class Skip(Exception):
    pass


def test(fn):
    TESTS.append(fn)
    return fn


def expect_raises(exc, fn, *args, contains=None, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        if contains is not None and contains not in str(e):
            raise AssertionError("%s raised %r, which does not mention %r"
                                 % (getattr(fn, "__name__", fn), str(e), contains))
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc.__name__))


def main(argv):
    only = argv[1:]
    passed = failed = skipped = 0
    for fn in TESTS:
        if only and not any(s in fn.__name__ for s in only):
            continue
        try:
            note = fn()
            passed += 1
            print("ok    %s%s" % (fn.__name__, "  (%s)" % note if note else ""), flush=True)
        except Skip as e:
            skipped += 1
            print("skip  %s  (%s)" % (fn.__name__, e), flush=True)
        except Exception:
            failed += 1
            print("FAIL  %s" % fn.__name__, flush=True)
            for line in traceback.format_exc().rstrip().splitlines():
                print("    " + line)
    print("%d passed, %d failed%s" % (passed, failed,
                                      ", %d skipped" % skipped if skipped else ""))
    return 1 if failed else 0
