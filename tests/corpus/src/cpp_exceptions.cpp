// C++ exceptions, built with wasm exception handling in its standard (exnref) form:
// try_table, throw, throw_ref and catch clauses (build.sh: ziglang's clang + an exception-enabled
// libc++/libc++abi built from ziglang's sources).
// Usage: cpp_exceptions [N]       N (default 5) varies payloads, recursion depth (10+N) and loop counts.
//        cpp_exceptions uncaught  throws an exception nothing catches: it leaves _start.
//        cpp_exceptions terminate throws out of a noexcept function: std::terminate, then abort.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

static int live = 0;  // Guards constructed and not yet destroyed

struct Guard {
    const char *tag;
    int id;
    Guard(const char *t, int i) : tag(t), id(i) { ++live; }
    ~Guard() {
        --live;
        printf(" ~%s%d", tag, id);
        if (std::uncaught_exceptions() == 0) printf("(normal)");
    }
};

struct AppError : std::exception {
    int code, depth;
    char msg[48];
    AppError(int c, int d) : code(c), depth(d) { snprintf(msg, sizeof msg, "AppError code=%d depth=%d", c, d); }
    const char *what() const noexcept override { return msg; }
};

struct DeepError : AppError {
    long long trail;  // sum of the levels the exception crossed, filled in by rethrowing frames
    DeepError(int c, int d) : AppError(c, d), trail(0) {}
};

// 1. library exception types, caught by the most specific handler that matches
static void classify(int i, int n) {
    switch ((i + n) % 5) {
    case 0: throw std::runtime_error("runtime #" + std::to_string(i));
    case 1: throw std::out_of_range("range #" + std::to_string(i));
    case 2: throw std::logic_error("logic #" + std::to_string(i));
    case 3: throw AppError(i * 10 + n, 0);
    default: break;
    }
}

static void test_library_types(int n) {
    printf("[1] library types\n");
    for (int i = 0; i < 6; i++) {
        try {
            classify(i, n);
            printf("  %d: no throw\n", i);
        } catch (const std::out_of_range &e) {
            printf("  %d: out_of_range: %s\n", i, e.what());
        } catch (const std::logic_error &e) {
            printf("  %d: logic_error: %s\n", i, e.what());
        } catch (const std::runtime_error &e) {
            printf("  %d: runtime_error: %s\n", i, e.what());
        } catch (const std::exception &e) {
            printf("  %d: std::exception (%s): %s\n", i, typeid(e).name(), e.what());
        }
    }
}

// 2. an exception crossing 10+N frames, each with a Guard destroyed on the way out
static int recurse(int level, int max) {
    Guard g("L", level);
    if (level == max) throw DeepError(7000 + max, level);
    int r = recurse(level + 1, max);
    printf(" unreachable");
    return r + 1;
}

static void test_deep(int n) {
    printf("[2] deep unwinding, depth %d\n ", 10 + n);
    try {
        recurse(0, 10 + n);
    } catch (const AppError &e) {  // by base class
        printf("\n  caught %s as AppError: %s, live=%d\n", typeid(e).name(), e.what(), live);
    }
}

// 3. rethrow with `throw;`: the same object reaches the outer handler, frames add to its payload
static void relay(int level, int max) {
    Guard g("R", level);
    try {
        if (level == max) throw DeepError(300, level);
        relay(level + 1, max);
    } catch (DeepError &e) {
        e.trail += level;
        if (level % 4 == 0) printf(" [relay %d trail %lld]", level, e.trail);
        throw;
    }
}

static void test_rethrow(int n) {
    printf("[3] rethrow\n ");
    const void *first = nullptr;
    try {
        try {
            relay(0, 11 + n % 4);
        } catch (...) {
            std::exception_ptr p = std::current_exception();
            try {
                std::rethrow_exception(p);
            } catch (const std::exception &e) {
                first = &e;
            }
            printf("\n  catch(...) rethrows\n");
            throw;
        }
    } catch (const DeepError &e) {
        printf("  outer: %s trail=%lld same_object=%s live=%d\n", e.what(), e.trail,
               first == static_cast<const void *>(static_cast<const std::exception *>(&e)) ? "yes" : "no",
               live);
    }
}

// 4. nested try blocks; a handler that throws a new exception, caught by the outer try
static void test_nested(int n) {
    printf("[4] nested try, throw from a handler\n");
    try {
        Guard outer("O", 1);
        try {
            Guard inner("I", 2);
            try {
                throw std::runtime_error("innermost");
            } catch (const std::logic_error &) {
                printf("  wrong handler\n");
            }
            printf("  not reached\n");
        } catch (const std::runtime_error &e) {
            printf("\n  middle caught '%s', throws AppError from the handler\n ", e.what());
            Guard h("H", 3);
            throw AppError(400 + n, 2);
        }
        printf("  not reached\n");
    } catch (const AppError &e) {
        printf("\n  outer caught %s, live=%d\n", e.what(), live);
    }
    // a handler whose own try/catch handles a second exception while the first one is caught
    try {
        throw AppError(1, 1);
    } catch (const AppError &a) {
        try {
            throw std::runtime_error("second");
        } catch (const std::exception &b) {
            printf("  while handling '%s': caught '%s', uncaught_exceptions=%d\n", a.what(), b.what(),
                   std::uncaught_exceptions());
        }
        printf("  first still current: %s\n", a.what());
    }
}

// 5. non-class exceptions and catch(...)
static void test_catch_all(int n) {
    printf("[5] catch(...) and non-class exceptions\n");
    for (int i = 0; i < 4; i++) {
        try {
            switch ((i + n) % 4) {
            case 0: throw 42 + n;
            case 1: throw "a C string";
            case 2: throw 2.5 * n;
            default: throw std::bad_exception();
            }
        } catch (int v) {
            printf("  int %d\n", v);
        } catch (const char *s) {
            printf("  const char* '%s'\n", s);
        } catch (...) {
            printf("  catch(...)\n");
        }
    }
}

// 6. std::exception_ptr: captured, stored, rethrown later; make_exception_ptr; nested exceptions
static void test_exception_ptr(int n) {
    printf("[6] exception_ptr\n");
    std::vector<std::exception_ptr> saved;
    for (int i = 0; i < 3 + n % 3; i++) {
        try {
            if (i % 2) throw AppError(600 + i, i);
            throw std::runtime_error("saved #" + std::to_string(i));
        } catch (...) {
            saved.push_back(std::current_exception());
        }
    }
    saved.push_back(std::make_exception_ptr(std::out_of_range("made")));
    for (auto &p : saved) {
        try {
            std::rethrow_exception(p);
        } catch (const AppError &e) {
            printf("  rethrown AppError: %s\n", e.what());
        } catch (const std::exception &e) {
            printf("  rethrown %s: %s\n", typeid(e).name(), e.what());
        }
    }
    try {
        try {
            throw AppError(650 + n, 6);
        } catch (...) {
            std::throw_with_nested(std::runtime_error("wrapper"));
        }
    } catch (const std::exception &e) {
        printf("  outer '%s'", e.what());
        try {
            std::rethrow_if_nested(e);
        } catch (const AppError &inner) {
            printf(", nested '%s'\n", inner.what());
        }
    }
}

// 7. a constructor that throws: the members already built are destroyed, in reverse order
struct Thrower {
    explicit Thrower(int v) {
        if (v > 0) throw AppError(700 + v, 7);
    }
};
struct Holder {
    Guard a, b;
    Thrower t;
    Guard c;
    explicit Holder(int v) : a("M", 1), b("M", 2), t(v), c("M", 3) {}
};

// a destructor that runs during unwinding and uses exceptions itself
struct Cleaner {
    ~Cleaner() {
        try {
            throw std::runtime_error("inside destructor");
        } catch (const std::exception &e) {
            printf(" [dtor caught '%s', uncaught_exceptions=%d]", e.what(), std::uncaught_exceptions());
        }
    }
};

static void test_ctor_dtor(int n) {
    printf("[7] constructors and destructors\n ");
    try {
        Holder h(n + 1);
        printf(" not reached");
    } catch (const AppError &e) {
        printf("\n  caught %s, live=%d\n ", e.what(), live);
    }
    try {
        Cleaner c;
        throw AppError(710, n);
    } catch (const AppError &e) {
        printf("\n  caught %s after the cleaner\n", e.what());
    }
    {
        Holder ok(0);  // no throw: normal destruction at the end of the scope
        printf(" ");
    }
    printf("\n");
}

// 8. throws from the standard library, through virtual and indirect calls
struct Shape {
    virtual ~Shape() {}
    virtual int area() const = 0;
};
struct Square : Shape {
    int s;
    explicit Square(int v) : s(v) {}
    int area() const override {
        if (s < 0) throw std::domain_error("negative side " + std::to_string(s));
        return s * s;
    }
};
struct Circle : Shape {
    int area() const override { return 3; }
};

static int call_indirect(int (*fn)(int), int v) { return fn(v) + 1; }
static int may_throw(int v) {
    if (v % 3 == 0) throw AppError(800 + v, 8);
    return v;
}

static void test_library_and_calls(int n) {
    printf("[8] std library throws, virtual and indirect calls\n");
    std::vector<int> v(3, n);
    try {
        printf("  v.at(%d) = %d\n", n + 3, v.at(n + 3));
    } catch (const std::out_of_range &) {
        printf("  vector::at out_of_range\n");
    }
    std::string s = "exceptions";
    try {
        printf("  %s\n", s.substr(s.size() + n).c_str());
    } catch (const std::out_of_range &) {
        printf("  string::substr out_of_range\n");
    }
    Circle c;
    Shape &sh = c;
    try {
        Square &sq = dynamic_cast<Square &>(sh);
        printf("  cast ok %d\n", sq.area());
    } catch (const std::bad_cast &e) {
        printf("  bad_cast\n");
    }
    Square neg(-n - 1), pos(n);
    const Shape *shapes[] = {&pos, &neg, &c};
    for (const Shape *p : shapes) {
        try {
            printf("  area %d\n", p->area());
        } catch (const std::domain_error &e) {
            printf("  domain_error: %s\n", e.what());
        }
    }
    int sum = 0;
    for (int i = 1; i <= 7; i++) {
        try {
            sum += call_indirect(i % 2 ? may_throw : [](int x) { return -x; }, i + n);
        } catch (const AppError &e) {
            sum += e.code;
        }
    }
    printf("  indirect sum %d\n", sum);
}

// 9. many throws: a checksum over (N%4+1)*200 exceptions of mixed types
struct Counted {  // a quiet Guard
    static int destroyed;
    Counted() { ++live; }
    ~Counted() { --live, ++destroyed; }
};
int Counted::destroyed = 0;

static unsigned step(unsigned x) {
    x = x * 1103515245u + 12345u;
    switch ((x >> 16) % 4) {
    case 0: throw AppError(int((x >> 8) & 0xff), 9);
    case 1: throw std::runtime_error("r");
    case 2: throw int((x >> 4) & 0xfff);
    default: return x;
    }
}

static void test_many(int n) {
    unsigned x = 12345u + unsigned(n), check = 0;
    int counts[4] = {0, 0, 0, 0};
    for (int i = 0; i < (n % 4 + 1) * 200; i++) {
        try {
            Counted g;
            x = step(x);
            counts[3]++;
            check += x & 0xff;
        } catch (const AppError &e) {
            counts[0]++;
            check = check * 31 + unsigned(e.code);
            x += 1;
        } catch (const std::exception &) {
            counts[1]++;
            check = check * 7 + 1;
            x += 2;
        } catch (int v) {
            counts[2]++;
            check ^= unsigned(v);
            x += 3;
        }
    }
    printf("[9] many throws: app=%d std=%d int=%d none=%d check=%u destroyed=%d live=%d\n", counts[0],
           counts[1], counts[2], counts[3], check, Counted::destroyed, live);
}

[[gnu::noinline]] static void thrower(int n) { throw AppError(999, n); }
static void leak(int n) noexcept { thrower(n); }

int main(int argc, char **argv) {
    const char *arg = argc > 1 ? argv[1] : "5";
    if (strcmp(arg, "uncaught") == 0) {
        printf("throwing AppError with no handler\n");
        fflush(stdout);
        Guard g("U", 0);  // not destroyed: nothing catches, so nothing unwinds in C++ terms
        throw AppError(13, 0);
    }
    if (strcmp(arg, "terminate") == 0) {
        printf("throwing out of a noexcept function\n");
        fflush(stdout);
        leak(1);
        return 0;
    }
    int n = atoi(arg);
    if (n < 0) n = -n;
    n %= 64;
    printf("cpp_exceptions n=%d\n", n);
    test_library_types(n);
    test_deep(n);
    test_rethrow(n);
    test_nested(n);
    test_catch_all(n);
    test_exception_ptr(n);
    test_ctor_dtor(n);
    test_library_and_calls(n);
    test_many(n);
    printf("done, live=%d\n", live);
    return live == 0 ? 0 : 1;
}
