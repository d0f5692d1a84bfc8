#include "splitstream/kafka/mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace splitstream::kafka {
namespace {

constexpr int16_t kApiKeyProduce = 0;  // Kafka protocol ApiKey of ProduceRequest

// The mock cluster lives inside a bare producer handle.
class MockClusterImpl final : public MockCluster {
 public:
  MockClusterImpl(rd_kafka_t* rk, rd_kafka_mock_cluster_t* mc) : rk_(rk), mc_(mc) {}
  ~MockClusterImpl() override {
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(rk_);
  }
  std::string bootstraps() const override { return rd_kafka_mock_cluster_bootstraps(mc_); }
  Status CreateTopic(const std::string& name, int partitions) override {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc_, name.c_str(), partitions, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Internal(rd_kafka_err2str(err));
    return Status::Ok();
  }
  void PushProduceErrors(const std::vector<int>& codes) override {
    std::vector<rd_kafka_resp_err_t> errs;
    for (int c : codes) errs.push_back(static_cast<rd_kafka_resp_err_t>(c));
    rd_kafka_mock_push_request_errors_array(mc_, kApiKeyProduce, errs.size(), errs.data());
  }

 private:
  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* mc_;
};

}  // namespace

Result<std::unique_ptr<MockCluster>> MockCluster::Create(int brokers) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[256];
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) return Status::Internal(std::string("rd_kafka_new: ") + errstr);
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    rd_kafka_destroy(rk);
    return Status::Internal("rd_kafka_mock_cluster_new failed");
  }
  return std::unique_ptr<MockCluster>(std::make_unique<MockClusterImpl>(rk, mc));
}

}  // namespace splitstream::kafka
