/*
** main.c — the goroutine-lua command.
**
** A stand-alone Lua 5.4 interpreter whose command line, environment
** handling, error reports, exit statuses and REPL behave like Debian's
** lua5.4, with the goroutine runtime attached to the main state: the main
** state is the main goroutine (id 1) and runs on this, the process's main
** thread, while the other goroutines run on the runtime's worker threads.
**
**   goroutine-lua [options] [script [args]]
**
** Extra options over lua5.4: '-p N' / '--procs N' (worker threads) and
** '-h' / '--help'.
**
** The program ends as a Go program does: when the main script (and the REPL,
** with -i) is done, the process exits at once with status 0, whatever the
** other goroutines are doing.  The REPL survives what ends a script: a
** goroutine's uncaught error is reported and the prompt comes back; a line
** that would deadlock, or that Ctrl-C interrupts, fails as a line does.  The main state is therefore never closed
** (closing it would stop and wait for every goroutine); stdio is flushed
** and exit() is called instead.
*/
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/readline.h>
#include <readline/history.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "goroutine.h"
#include "alloc.h"

#define PROGNAME      "goroutine-lua"
#define PROMPT1       "> "
#define PROMPT2       ">> "
#define EOF_MARK      "<eof>"

/* Name that prefixes messages on stderr; NULL inside the REPL (as lua5.4). */
static const char *progname = PROGNAME;

/* ------------------------------------------------------------ messages */

static void message(const char *pname, const char *msg) {
  if (pname != NULL) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Print the error message on top of the stack (if status is an error). */
static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    message(progname, msg);
    lua_pop(L, 1);
  }
  return status;
}

static void print_version(void) {
  fputs(LUA_COPYRIGHT "\n", stdout);
  fputs(PROGNAME " " GR_VERSION "\n", stdout);
  fflush(stdout);
}

static const char usage_text[] =
  "usage: %s [options] [script [args]]\n"
  "Available options are:\n"
  "  -e stat   execute string 'stat'\n"
  "  -i        enter interactive mode after executing 'script'\n"
  "  -l mod    require library 'mod' into global 'mod'\n"
  "  -l g=mod  require library 'mod' into global 'g'\n"
  "  -v        show version information\n"
  "  -E        ignore environment variables\n"
  "  -W        turn warnings on\n"
  "  -p N      run goroutines on N worker threads (also --procs N); default:\n"
  "            $GOROUTINE_MAXPROCS, else the number of online CPUs\n"
  "  -h        show this help and exit (also --help)\n"
  "  --        stop handling options\n"
  "  -         stop handling options and execute stdin\n";


/* ----------------------------------------------------- command line */

enum {
  HAS_I = 1 << 0,      /* -i */
  HAS_V = 1 << 1,      /* -v (and -i) */
  HAS_E = 1 << 2,      /* -e */
  HAS_NOENV = 1 << 3,  /* -E */
  HAS_HELP = 1 << 4    /* -h, --help */
};

enum { BAD_NONE, BAD_OPTION, BAD_NEEDARG, BAD_PROCS };

typedef struct Options {
  int flags;           /* HAS_* */
  int script;          /* argv index of the script; argc when there is none */
  int optlim;          /* options are argv[1 .. optlim-1] */
  int procs;           /* -p N; 0 when not given */
  int bad;             /* BAD_*: why the command line is wrong */
  const char *badarg;  /* the offending option */
  const char *badval;  /* the offending value (BAD_PROCS) */
} Options;

/* A positive decimal integer that fits an int, or 0. */
static int parse_procs(const char *s) {
  long n = 0;
  if (*s == '\0') return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    n = n * 10 + (*s - '0');
    if (n > 0x7fffffffL) return 0;
  }
  return (int)n;
}

/* A chaos seed: a decimal integer from 0 to 4294967295.  Returns 0 if s
** is not one. */
static int parse_seed(const char *s, unsigned *seed) {
  unsigned long long n = 0;
  if (*s == '\0') return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    n = n * 10 + (unsigned)(*s - '0');
    if (n > 0xFFFFFFFFull) return 0;
  }
  *seed = (unsigned)n;
  return 1;
}

/* The value of an option that takes one: glued to it ("-estat"), after '='
** for a long option ("--procs=4"), or the next argument.  Returns NULL (and
** records the error) when there is none or the next argument is an option. */
static const char *option_value(char **argv, int *i, const char *glued,
                                Options *o) {
  if (glued != NULL && *glued != '\0') return glued;
  if (argv[*i + 1] == NULL || argv[*i + 1][0] == '-') {
    o->bad = BAD_NEEDARG;
    o->badarg = argv[*i];
    return NULL;
  }
  return argv[++*i];
}

static int procs_option(char **argv, int *i, const char *glued, Options *o) {
  const char *opt = argv[*i];
  const char *val = option_value(argv, i, glued, o);
  if (val == NULL) return 0;
  o->procs = parse_procs(val);
  if (o->procs <= 0) {
    o->bad = BAD_PROCS;
    o->badarg = opt;
    o->badval = val;
    return 0;
  }
  return 1;
}

/* Scan the options (as lua5.4 does: they end at the first argument that
** does not start with '-', at '--', or at '-').  Returns 0 on bad usage. */
static int collect_options(int argc, char **argv, Options *o) {
  int i;
  memset(o, 0, sizeof *o);
  o->script = o->optlim = argc;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {                      /* the script */
      o->script = o->optlim = i;
      return 1;
    }
    switch (a[1]) {
      case '\0':                            /* '-': the script is stdin */
        o->script = o->optlim = i;
        return 1;
      case '-':
        if (a[2] == '\0') {                 /* '--' */
          o->optlim = i + 1;
          o->script = i + 1;                /* argc when nothing follows */
          return 1;
        }
        if (strcmp(a, "--help") == 0) {
          o->flags |= HAS_HELP;
          return 1;
        }
        if (strcmp(a, "--procs") == 0) {
          if (!procs_option(argv, &i, NULL, o)) return 0;
          break;
        }
        if (strncmp(a, "--procs=", 8) == 0) {
          o->procs = parse_procs(a + 8);
          if (o->procs <= 0) {
            o->bad = BAD_PROCS;
            o->badarg = "--procs";
            o->badval = a + 8;
            return 0;
          }
          break;
        }
        goto bad_option;
      case 'E':
        if (a[2] != '\0') goto bad_option;
        o->flags |= HAS_NOENV;
        break;
      case 'W':
        if (a[2] != '\0') goto bad_option;
        break;
      case 'i':
        if (a[2] != '\0') goto bad_option;
        o->flags |= HAS_I | HAS_V;          /* -i implies -v */
        break;
      case 'v':
        if (a[2] != '\0') goto bad_option;
        o->flags |= HAS_V;
        break;
      case 'h':
        if (a[2] != '\0') goto bad_option;
        o->flags |= HAS_HELP;
        return 1;
      case 'e':
        o->flags |= HAS_E;
        /* FALLTHROUGH */
      case 'l':
        if (option_value(argv, &i, a + 2, o) == NULL) return 0;
        break;
      case 'p':
        if (!procs_option(argv, &i, a + 2, o)) return 0;
        break;
      default:
        goto bad_option;
    }
  }
  return 1;
bad_option:
  o->bad = BAD_OPTION;
  o->badarg = argv[i];
  return 0;
}

static void print_usage(const Options *o) {
  fprintf(stderr, "%s: ", progname);
  switch (o->bad) {
    case BAD_NEEDARG:
      fprintf(stderr, "'%s' needs argument\n", o->badarg);
      break;
    case BAD_PROCS:
      fprintf(stderr, "'%s' needs a positive integer, got '%s'\n",
              o->badarg, o->badval);
      break;
    default:
      fprintf(stderr, "unrecognized option '%s'\n", o->badarg);
      break;
  }
  fprintf(stderr, usage_text, progname);
  fflush(stderr);
}


/* ------------------------------------------------- goroutine errors */

/* Ctrl-C while the main goroutine runs: the runtime raises
** "interrupted!" at the next instruction; a second Ctrl-C kills. */
static gr_runtime *main_rt;

/* GOROUTINE_CHAOS: the chaos scheduling seed, 0 when off.  A failing run
** ends with it on stderr, so that the same seed can replay it. */
static unsigned chaos_seed;

/*
** A goroutine's uncaught error (on its worker thread) is reported as the
** runtime reports it.  It ends a script with status 1; in the REPL the
** program goes on.  While readline waits at a terminal's prompt, reports
** are kept for its event hook (the main thread) to print above the line
** being typed, since readline owns the screen.
*/
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int in_repl;          /* errors in goroutines do not end the program */
static int at_prompt;        /* readline waits: reports go to 'pending' */
static char *pending;        /* reports not yet printed (malloc'd) */
static size_t npending;

static void write_report(FILE *out, long long id, const char *msg) {
  fprintf(out, "goroutine %lld [error]:\n%s\n", id, msg);
  if (chaos_seed != 0) fprintf(out, "%s: chaos seed %u\n", PROGNAME, chaos_seed);
}

/* Keep a report for the prompt; 0 if there is no memory for it. */
static int keep_report(long long id, const char *msg) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (f == NULL) return 0;
  write_report(f, id, msg);
  if (fclose(f) != 0) { free(text); return 0; }
  char *grown = (char *)realloc(pending, npending + len + 1);
  if (grown == NULL) { free(text); return 0; }
  memcpy(grown + npending, text, len + 1);
  pending = grown;
  npending += len;
  free(text);
  return 1;
}

static void on_goroutine_error(void *ud, long long id, const char *msg) {
  (void)ud;
  pthread_mutex_lock(&report_lock);
  if (!(at_prompt && keep_report(id, msg))) {
    fflush(stdout);
    write_report(stderr, id, msg);
    fflush(stderr);
  }
  int fatal = !in_repl;
  pthread_mutex_unlock(&report_lock);
  if (fatal) {
    fflush(stdout);
    exit(EXIT_FAILURE);
  }
}

/* The reports kept, to print now (the caller frees them); NULL if none.
** 'still_at_prompt': whether reports made from now on are kept too. */
static char *take_pending(int still_at_prompt) {
  pthread_mutex_lock(&report_lock);
  char *text = pending;
  pending = NULL;
  npending = 0;
  at_prompt = still_at_prompt;
  pthread_mutex_unlock(&report_lock);
  return text;
}

static void print_text(char *text) {
  fputs(text, stderr);
  fflush(stderr);
  free(text);
}

/* readline's event hook, every tenth of a second while it waits for a key:
** print the reports kept meanwhile, then the prompt and the line again. */
static int print_pending_reports(void) {
  char *text = take_pending(1);
  if (text == NULL) return 0;
  char *typed = rl_copy_text(0, rl_end);
  int point = rl_point;
  rl_save_prompt();                         /* clear the line on screen */
  rl_replace_line("", 0);
  rl_redisplay();
  print_text(text);
  rl_restore_prompt();                      /* and draw it again below */
  rl_replace_line(typed ? typed : "", 0);
  rl_point = point;
  free(typed);
  rl_on_new_line();
  rl_redisplay();
  return 0;
}


/* ----------------------------------------------------- running chunks */

static void on_sigint(int sig) {
  signal(sig, SIG_DFL);
  gr_interrupt(main_rt);
}

/* Call the function under its 'narg' arguments as the main goroutine's
** body (on the scheduler, like any goroutine), with Ctrl-C handling; on an
** error the message and a traceback are on the stack. */
static int docall(lua_State *L, int narg, int nres) {
  int status;
  signal(SIGINT, on_sigint);
  status = gr_pcall(L, narg, nres);
  signal(SIGINT, SIG_DFL);
  return status;
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int dofile(lua_State *L, const char *name) {
  return dochunk(L, luaL_loadfile(L, name));
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l mod: mod = require "mod";  -l g=mod: g = require "mod". */
static int dolibrary(lua_State *L, const char *spec) {
  int status;
  const char *eq = strchr(spec, '=');
  const char *modname = eq ? eq + 1 : spec;
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = docall(L, 1, 1);
  if (status == LUA_OK) {                   /* _G[globname] = module */
    lua_pushglobaltable(L);
    lua_insert(L, -2);
    lua_pushlstring(L, spec, eq ? (size_t)(eq - spec) : strlen(spec));
    lua_insert(L, -2);
    lua_settable(L, -3);
    lua_pop(L, 1);
  }
  return report(L, status);
}

/* LUA_INIT_5_4, else LUA_INIT: "@file" runs the file, else the text (its
** chunk name is the variable's name). */
static int handle_luainit(lua_State *L) {
  static const char *const chunknames[] = {
    "=LUA_INIT_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR, "=LUA_INIT"
  };
  size_t k;
  for (k = 0; k < sizeof chunknames / sizeof chunknames[0]; k++) {
    const char *init = getenv(chunknames[k] + 1);
    if (init == NULL) continue;
    if (init[0] == '@') return dofile(L, init + 1);
    return dostring(L, init, chunknames[k]);
  }
  return LUA_OK;
}

/* The global 'arg': the script at 0, its arguments at 1.., the interpreter
** and options at negative indices; with no script, everything from 0. */
static void create_arg_table(lua_State *L, int argc, char **argv,
                             int script) {
  int i;
  if (script >= argc) script = 0;
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0,
                  script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, (lua_Integer)i - script);
  }
  lua_setglobal(L, "arg");
}

/* Run -e, -l and -W in command-line order.  Returns 0 on the first error. */
static int run_options(lua_State *L, char **argv, int optlim) {
  int i;
  for (i = 1; i < optlim; i++) {
    const char *a = argv[i];
    switch (a[1]) {
      case 'e':
      case 'l': {
        const char *val = a[2] != '\0' ? a + 2 : argv[++i];
        int status = a[1] == 'e' ? dostring(L, val, "=(command line)")
                                 : dolibrary(L, val);
        if (status != LUA_OK) return 0;
        break;
      }
      case 'W':
        lua_warning(L, "@on", 0);
        break;
      case 'p':
        if (a[2] == '\0') i++;              /* skip the value */
        break;
      case '-':
        if (strcmp(a, "--procs") == 0) i++;  /* skip the value */
        break;
    }
  }
  return 1;
}

/* The script's arguments: arg[1] .. arg[#arg]. */
static int push_script_args(lua_State *L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

static int handle_script(lua_State *L, char **argv, int script) {
  int status;
  const char *fname = argv[script];
  /* "-" is stdin, unless it follows "--" (then it is a file named "-") */
  if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
    fname = NULL;
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = push_script_args(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}


/* ---------------------------------------------------------------- REPL */

static const char *get_prompt(lua_State *L, int firstline) {
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushstring(L, firstline ? PROMPT1 : PROMPT2);
  } else {
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
  }
  return lua_tostring(L, -1);
}

static void save_line(const char *line) {
  if (line[0] != '\0') add_history(line);
}

/* Is this syntax error only an unfinished chunk?  Pops it if so. */
static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t len, marklen = sizeof(EOF_MARK) - 1;
    const char *msg = lua_tolstring(L, -1, &len);
    if (len >= marklen && strcmp(msg + len - marklen, EOF_MARK) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Ctrl-C at the prompt drops the line being typed and gives a new prompt:
** only os.exit or the end of input leaves the REPL.  (readline catches the
** signal, echoes ^C, resets the terminal and passes it on to this handler,
** then calls its signal hook.) */
static volatile sig_atomic_t prompt_interrupted;

static void on_sigint_at_prompt(int sig) {
  (void)sig;
  prompt_interrupted = 1;
}

/* readline's hooks while it waits at a terminal: its event hook, every
** tenth of a second, and its signal hook. */
static int prompt_hook(void) {
  if (prompt_interrupted) {
    prompt_interrupted = 0;
    rl_point = rl_end;                      /* after all that was typed */
    rl_redisplay();
    fputs("^C", rl_outstream);
    rl_crlf();
    rl_replace_line("", 0);
    rl_on_new_line();
    rl_redisplay();
  }
  return print_pending_reports();
}

/* readline, with goroutines' error reports printed above the prompt while
** it waits at a terminal, and Ctrl-C dropping the line. */
static char *read_line(const char *prompt) {
  int tty = isatty(STDIN_FILENO);
  if (tty) {
    char *text = take_pending(1);
    if (text) print_text(text);
    rl_event_hook = prompt_hook;
  }
  rl_signal_event_hook = prompt_hook;
  prompt_interrupted = 0;
  signal(SIGINT, on_sigint_at_prompt);
  char *line = readline(prompt);
  signal(SIGINT, SIG_DFL);
  rl_event_hook = NULL;
  rl_signal_event_hook = NULL;
  if (tty) {
    char *text = take_pending(0);
    if (text) print_text(text);
  }
  return line;
}

/* Read a line into a string on the stack; 0 at end of input. */
static int pushline(lua_State *L, int firstline) {
  size_t len;
  char *line = read_line(get_prompt(L, firstline));
  lua_pop(L, 1);                            /* the prompt */
  if (line == NULL) return 0;
  len = strlen(line);
  if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
  if (firstline && line[0] == '=')          /* "=expr" is "return expr" */
    lua_pushfstring(L, "return %s", line + 1);
  else
    lua_pushlstring(L, line, len);
  free(line);
  return 1;
}

/* Try the line as "return line;" (an expression to print). */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2);                      /* the modified line */
    save_line(line);
  } else {
    lua_pop(L, 2);                          /* the error and modified line */
  }
  return status;
}

/* Compile the line as a statement, reading continuation lines while the
** chunk is unfinished. */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *chunk = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, chunk, len, "=stdin");
    if (!incomplete(L, status) || !pushline(L, 0)) {
      save_line(chunk);
      return status;
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* Read and compile one input; leaves the function (or the error) alone on
** the stack.  Returns -1 at end of input. */
static int loadline(lua_State *L) {
  int status;
  lua_settop(L, 0);
  if (!pushline(L, 1)) return -1;
  if ((status = addreturn(L)) != LUA_OK)
    status = multiline(L);
  lua_remove(L, 1);
  return status;
}

/* Print whatever the chunk returned, with the global 'print'. */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      message(progname, lua_pushfstring(L, "error calling 'print' (%s)",
                                        lua_tostring(L, -1)));
  }
}

static void do_repl(lua_State *L) {
  int status;
  const char *saved = progname;
  progname = NULL;                          /* no prefix on REPL errors */
  rl_readline_name = "lua";
  rl_variable_bind("echo-control-characters", "off");   /* prompt_hook echoes ^C */
  pthread_mutex_lock(&report_lock);
  in_repl = 1;                              /* goroutine errors: reported */
  pthread_mutex_unlock(&report_lock);
  gr_set_interactive(main_rt, 1);           /* deadlocks: the line fails */
  while ((status = loadline(L)) != -1) {
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) print_results(L);
    else report(L, status);
  }
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
  progname = saved;
}


/* ---------------------------------------------------------------- main */


/* Start the runtime with the asynchronous, process-directed signals
** blocked, so that the threads gr_attach starts (which inherit the mask)
** never take them: Ctrl-C and terminal signals belong to the main thread,
** where the interrupt handler and readline expect them.  (Linux delivers a
** process-directed signal to the main thread anyway whenever it does not
** block it, so workers started later from the main thread are harmless;
** the SIGINT handler works from any thread in any case.) */
static gr_runtime *attach_runtime(lua_State *L, int procs, unsigned chaos) {
  static const int sigs[] = {
    SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH
  };
  gr_config cfg = {0};
  gr_runtime *rt;
  sigset_t block, old;
  size_t k;
  sigemptyset(&block);
  for (k = 0; k < sizeof sigs / sizeof sigs[0]; k++) sigaddset(&block, sigs[k]);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  cfg.procs = procs;
  cfg.chaos_seed = chaos;
  cfg.on_error = on_goroutine_error;
  rt = gr_attach(L, &cfg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rt;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  Options o;
  luaL_checkversion(L);
  if (!collect_options(argc, argv, &o)) {
    print_usage(&o);
    return 0;
  }
  if (o.flags & HAS_HELP) {
    printf(usage_text, progname);
    fflush(stdout);
    lua_pushboolean(L, 1);
    return 1;
  }
  const char *chaos = getenv("GOROUTINE_CHAOS");
  if (chaos != NULL && *chaos != '\0' && !parse_seed(chaos, &chaos_seed)) {
    fprintf(stderr, "%s: GOROUTINE_CHAOS needs a seed (an integer from 0 to "
            "4294967295), got '%s'\n", progname, chaos);
    fflush(stderr);
    return 0;
  }
  if (o.flags & HAS_V) print_version();
  if (o.flags & HAS_NOENV) {                /* libraries ignore env. vars */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  if ((main_rt = attach_runtime(L, o.procs, chaos_seed)) == NULL)
    return luaL_error(L, "cannot start the goroutine runtime");
  gr_setglobals(L);
  create_arg_table(L, argc, argv, o.script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (!(o.flags & HAS_NOENV) && handle_luainit(L) != LUA_OK)
    return 0;
  if (!run_options(L, argv, o.optlim))
    return 0;
  if (o.script < argc && handle_script(L, argv, o.script) != LUA_OK)
    return 0;
  if (o.flags & HAS_I)
    do_repl(L);
  else if (o.script >= argc && !(o.flags & (HAS_E | HAS_V))) {
    if (isatty(STDIN_FILENO)) {
      print_version();
      do_repl(L);
    } else {
      dofile(L, NULL);                      /* stdin is the script */
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  int status, ok;
  lua_State *L;
  if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
    const char *slash = strrchr(argv[0], '/');
    progname = slash ? slash + 1 : argv[0];
    if (*progname == '\0') progname = PROGNAME;
  }
  L = luaL_newstate();
  if (L == NULL) {
    message(progname, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
#ifdef GR_FAULT_INJECTION
  lua_setallocf(L, gr_lua_alloc, NULL);     /* its allocations count too */
#endif
  lua_gc(L, LUA_GCSTOP);                    /* while the state is built */
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = lua_toboolean(L, -1);
  report(L, status);
  if (!(ok && status == LUA_OK) && chaos_seed != 0) {
    char line[64];
    snprintf(line, sizeof line, "chaos seed %u", chaos_seed);
    message(progname, line);
  }
  /* Go semantics: the program ends now, whatever the other goroutines are
  ** doing.  lua_close would stop and wait for them. */
  fflush(stdout);
  fflush(stderr);
  exit((ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE);
}
