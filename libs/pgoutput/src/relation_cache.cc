#include "splitstream/pgoutput/pgoutput.h"

namespace splitstream::pgoutput {
namespace {

bool SameSchema(const RelationInfo& info, const Relation& r) {
  if (info.ns != r.ns || info.name != r.name || info.replica_identity != r.replica_identity ||
      info.columns.size() != r.columns.size()) {
    return false;
  }
  for (size_t i = 0; i < r.columns.size(); ++i) {
    const ColumnInfo& a = info.columns[i];
    const Column& b = r.columns[i];
    if (a.key != b.key || a.name != b.name || a.type_oid != b.type_oid ||
        a.type_modifier != b.type_modifier) {
      return false;
    }
  }
  return true;
}

}  // namespace

const RelationInfo& RelationCache::Apply(const Relation& relation) {
  auto [it, inserted] = relations_.try_emplace(relation.oid);
  RelationInfo& info = it->second;
  if (!inserted && SameSchema(info, relation)) return info;
  info.oid = relation.oid;
  info.ns.assign(relation.ns);
  info.name.assign(relation.name);
  info.replica_identity = relation.replica_identity;
  info.columns.clear();
  info.columns.reserve(relation.columns.size());
  for (const Column& c : relation.columns) {
    info.columns.push_back({c.key, std::string(c.name), c.type_oid, c.type_modifier});
  }
  info.version = inserted ? 1 : info.version + 1;
  return info;
}

const RelationInfo* RelationCache::Find(uint32_t oid) const {
  auto it = relations_.find(oid);
  return it == relations_.end() ? nullptr : &it->second;
}

}  // namespace splitstream::pgoutput
