// A pending asynchronous operation as Lua sees it.
//
// Bindings never yield (research/lua-host-anchors.md §6): a binding starts an
// Asio operation and returns an Op handle at once. The Lua scheduler records
// which task waits on the op's id; when the operation finishes, complete()
// queues the id, core.poll() hands it to the scheduler, and the task resumes
// and fetches the result with op:result(). No Lua code ever runs from inside
// an Asio completion handler.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

struct lua_State;

namespace spritescript::bindings {

// Ids of operations that finished since the scheduler last asked.
struct Completions {
  std::vector<std::uint64_t> ids;
  std::uint64_t next_id = 1;
};

class Op : public std::enable_shared_from_this<Op> {
 public:
  explicit Op(std::shared_ptr<Completions> completions)
      : completions_(std::move(completions)), id_(completions_->next_id++) {}
  virtual ~Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  std::uint64_t id() const { return id_; }
  bool done() const { return done_; }

  // Stop the underlying operation; it still completes (as cancelled).
  virtual void cancel() = 0;
  // Push the operation's results; only called once done(). Returns the count.
  virtual int push_result(lua_State* L) = 0;

 protected:
  void complete() {
    if (done_) return;
    done_ = true;
    completions_->ids.push_back(id_);
  }

 private:
  std::shared_ptr<Completions> completions_;
  std::uint64_t id_;
  bool done_ = false;
};

// Pushes a new op userdata (methods: id, cancel, done, result) owning `op`.
void push_op(lua_State* L, std::shared_ptr<Op> op);

// The loop's completion queue, for bindings other than core that make ops.
std::shared_ptr<Completions> completions_of(lua_State* L);

}  // namespace spritescript::bindings
