import logging

from meshnet import Service, command

logger = logging.getLogger(__name__)


class Talker(Service):
    @command
    async def say(self, text):
        logger.info("said %s", text)


async def test_log_records_made_in_a_service_carry_its_address(node, caplog):
    caplog.set_level(logging.INFO)
    talker = await node.newservice(Talker)
    await node.call(talker, "say", "hi")
    [record] = [r for r in caplog.records if r.getMessage() == "said hi"]
    assert record.address == str(talker)
