// A child process started by a test (a producer, warrenctl), with its output in a log file,
// stopped by PID (SIGTERM, then SIGKILL after a grace period) when the object goes away.
// Tests never signal anything they did not start.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace warren::test {

class ChildProcess {
 public:
  // Starts `program` with `args`; the child's environment is this process's plus `env`.
  ChildProcess(std::string program, std::vector<std::string> args,
               std::map<std::string, std::string> env, std::string log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // SIGTERM and wait; returns the exit status (or 128+signal).
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(30));
  void kill_now();
  std::string log() const;
  const std::string& log_path() const { return log_path_; }

 private:
  int wait_for_exit(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int exit_status_ = -1;
  std::string log_path_;
};

struct CommandResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a command to completion (for warrenctl and the stack script).
CommandResult run_command(const std::string& program, const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env = {});

}  // namespace warren::test
