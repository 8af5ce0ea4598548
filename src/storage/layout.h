// Where things live in the store (doc/storage.md has the full table).
//
//   c/<workspace>/<index>   one change chunk of a workspace, in the order the
//                           workspace applied them; index: 8 bytes big-endian
//   h/<workspace>           the workspace's heads after its last stored change
//                           (32-byte hashes, concatenated); written in the
//                           same batch as every change, so it lists the
//                           workspaces and their heads without loading them
//   n/actor                 this node's Automerge actor ID (16 bytes)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace etherply::storage {

std::string ChangeKey(std::string_view workspace, uint64_t index);
std::string ChangePrefix(std::string_view workspace);
inline constexpr std::string_view kActorKey = "n/actor";
inline constexpr std::string_view kHeadsPrefix = "h/";
std::string HeadsKey(std::string_view workspace);

// The prefix that `key` shares with the keys written just before and after
// it, so that the store can insert it next to the last one (rocksdb_store.cc):
// a workspace's change keys come in index order, so c/<workspace>/; its
// heads key is rewritten with every op, so the key itself. Empty for other
// keys.
std::string_view SequencePrefix(std::string_view key);

// Calls f(record) for each stored change record of a workspace, in the order
// they were written, until f fails; returns f's failure or the store's.
Status ForEachChange(Store& store, std::string_view workspace,
                     const std::function<Status(std::string_view)>& f);

}  // namespace etherply::storage
