/* The sandbox's first program: read the task's launch file, lower the rlimits, set the variables, exec.
 *
 * bubblewrap starts it as `/launch /box/.launch` once the sandbox is unblocked; the service writes the
 * launch file into the box just before (functions/backends/local/launch.py writes the format read here).
 * Static, so nothing is loaded before the program's own exec: a shell costs a millisecond per run here.
 * The sandbox lowers its own limits, which is always allowed: hard limits can only go down.
 *
 * The file is a sequence of NUL-terminated records, a one-letter kind then its text:
 *   L<resource> <value>   setrlimit(resource, {value, value}) (resource: the RLIMIT_* number)
 *   E<NAME>=<value>       an environment variable
 *   M                     the program's stderr is its stdout
 *   A<word>               the next word of the program's argv (the first is searched on PATH)
 * Exit status: 127 when the program is not found and 126 when it cannot be executed (a shell's answers),
 * 125 when the launch file cannot be used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_FILE_BYTES (1 << 20)
#define MAX_WORDS 4096
#define LAUNCH_FILE_UNUSABLE 125
#define CANNOT_EXECUTE 126
#define NOT_FOUND 127

static char contents[MAX_FILE_BYTES + 1];
static char *words[MAX_WORDS + 1];

static int fail(int status, const char *what, const char *detail) {
  dprintf(STDERR_FILENO, "launch: %s: %s\n", what, detail);
  return status;
}

static int read_file(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  *size = 0;
  while (*size < MAX_FILE_BYTES) {
    ssize_t count = read(fd, contents + *size, MAX_FILE_BYTES - *size);
    if (count < 0 && errno == EINTR)
      continue;
    if (count <= 0) {
      int saved = errno;
      close(fd);
      errno = saved;
      return count < 0 ? -1 : 0;
    }
    *size += (size_t)count;
  }
  close(fd);
  errno = EFBIG;
  return -1;
}

static int apply(char kind, char *text, int *word_count) {
  switch (kind) {
  case 'L': {
    int resource;
    unsigned long long value;
    char extra;
    if (sscanf(text, "%d %llu%c", &resource, &value, &extra) != 2)
      return fail(LAUNCH_FILE_UNUSABLE, "not a limit", text);
    struct rlimit limit = {(rlim_t)value, (rlim_t)value};
    if (setrlimit(resource, &limit) != 0)
      return fail(LAUNCH_FILE_UNUSABLE, "cannot set a limit", strerror(errno));
    return 0;
  }
  case 'E':
    if (strchr(text, '=') == NULL || putenv(text) != 0)
      return fail(LAUNCH_FILE_UNUSABLE, "not a variable", text);
    return 0;
  case 'M':
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
      return fail(LAUNCH_FILE_UNUSABLE, "cannot merge stderr into stdout", strerror(errno));
    return 0;
  case 'A':
    if (*word_count == MAX_WORDS)
      return fail(LAUNCH_FILE_UNUSABLE, "too many words", text);
    words[(*word_count)++] = text;
    return 0;
  default:
    return fail(LAUNCH_FILE_UNUSABLE, "unknown record", text);
  }
}

int main(int argc, char **argv) {
  size_t size;
  if (argc != 2)
    return fail(LAUNCH_FILE_UNUSABLE, "usage", "launch FILE");
  if (read_file(argv[1], &size) != 0)
    return fail(LAUNCH_FILE_UNUSABLE, argv[1], strerror(errno));
  if (size == 0 || contents[size - 1] != '\0')
    return fail(LAUNCH_FILE_UNUSABLE, argv[1], "not a sequence of NUL-terminated records");
  int word_count = 0;
  for (char *record = contents; record < contents + size; record += strlen(record) + 1) {
    int status = apply(record[0], record + 1, &word_count);
    if (status != 0)
      return status;
  }
  if (word_count == 0)
    return fail(LAUNCH_FILE_UNUSABLE, argv[1], "nothing to launch");
  words[word_count] = NULL;
  execvp(words[0], words);
  return fail(errno == ENOENT ? NOT_FOUND : CANNOT_EXECUTE, words[0], strerror(errno));
}
