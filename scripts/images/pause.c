/*
 * The pod sandbox's init process for the local test node (scripts/kube-env up --node): it holds
 * the pod's namespaces, reaps orphaned children and exits on SIGINT or SIGTERM.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(void) {
  struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child };
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}
