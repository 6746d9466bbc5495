#include <stdio.h>
#include <goroutine.h>

int main(void) {
  gr_runtime *rt = gr_open(NULL);                       /* workers start */
  gr_chan *out = gr_chan_make(rt, 0);
  gr_value arg = { .type = GR_CHANNEL, .u.channel = out }, v;
  gr_go(rt, "local out = ...; out:send('hello from goroutine ' .. goroutine.id())",
        "=hello", &arg, 1, NULL);                       /* ... is arg */
  if (gr_chan_recv(out, &v, -1) == GR_OK) puts(v.u.string.ptr);
  gr_value_free(&v);
  gr_chan_unref(out);
  gr_close(rt);                                         /* all stopped, joined */
  return 0;
}
